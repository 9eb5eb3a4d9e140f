package config

import (
	"net"
	"strings"
)

// RedisConn is how a queue or the result store reaches Redis: exactly one of
// URL, Sentinel and Cluster is set.
type RedisConn struct {
	URL         string         // redis://, rediss:// or unix:// URL; "" with Sentinel or Cluster
	Sentinel    *RedisSentinel // a primary found through Redis Sentinel
	Cluster     *RedisCluster  // a Redis Cluster
	TLS         *TLS           // nil: plaintext (a rediss:// URL still uses TLS)
	MinReplicas int            // replicas that must confirm a write (WAIT) before it counts; 0: none
}

// RedisSentinel names a primary monitored by Redis Sentinel. Password is
// used toward the sentinels and the Redis servers alike.
type RedisSentinel struct {
	MasterName string
	Addrs      []string // host:port of the sentinels
	Username   string
	Password   string
}

// RedisCluster names some nodes of a Redis Cluster; the client discovers
// the others from them.
type RedisCluster struct {
	Addrs    []string // host:port
	Username string
	Password string
}

// redisBlock is the part of a redis block shared by queues and results.
type redisBlock struct {
	m           *rawMeta
	url         string
	sentinel    *rawRedisSentinel
	cluster     *rawRedisCluster
	tls         *rawTLS
	minReplicas int64
}

// buildRedisConn checks that exactly one of url, sentinel and cluster is
// given, and each of them.
func (b *builder) buildRedisConn(r redisBlock) RedisConn {
	m := r.m
	c := RedisConn{MinReplicas: int(b.atLeast(m, "min_replicas", r.minReplicas, 0, 0))}
	var given []string
	if m.has("url") {
		given = append(given, "url")
		b.redisURL(m, r.url)
		c.URL = r.url
	}
	if s := r.sentinel; s != nil {
		if len(given) > 0 {
			b.errorf(s.def(), "Conflicting Redis addresses", "This redis block already names Redis with %s; give exactly one of url, sentinel and cluster.", given[0])
		}
		given = append(given, "sentinel")
		sm := &s.rawMeta
		c.Sentinel = &RedisSentinel{MasterName: s.MasterName, Addrs: b.redisAddrs(sm, s.Addrs), Username: s.Username, Password: s.Password}
		if sm.known("master_name") && strings.TrimSpace(s.MasterName) == "" {
			b.errorf(sm.valueAt("master_name"), "Empty name", "master_name is empty; give the name the sentinels monitor the primary under (their \"sentinel monitor NAME ...\").")
		}
	}
	if cl := r.cluster; cl != nil {
		if len(given) > 0 {
			b.errorf(cl.def(), "Conflicting Redis addresses", "This redis block already names Redis with %s; give exactly one of url, sentinel and cluster.", given[0])
		}
		given = append(given, "cluster")
		cm := &cl.rawMeta
		c.Cluster = &RedisCluster{Addrs: b.redisAddrs(cm, cl.Addrs), Username: cl.Username, Password: cl.Password}
	}
	if len(given) == 0 {
		b.errorf(m.def(), "Missing Redis address", "A redis block needs exactly one of url = \"redis://host:port\", sentinel { ... } or cluster { ... }.")
	}
	if t := r.tls; t != nil {
		tm := &t.rawMeta
		c.TLS = &TLS{CAFile: b.tlsFile(tm, "ca_file", t.CAFile), CertFile: b.tlsFile(tm, "cert_file", t.CertFile), KeyFile: b.tlsFile(tm, "key_file", t.KeyFile), InsecureSkipVerify: t.InsecureSkipVerify}
		if tm.has("cert_file") != tm.has("key_file") {
			b.errorf(tm.def(), "Incomplete client certificate", "cert_file and key_file go together; set both or neither.")
		}
	}
	return c
}

// redisAddrs checks a list of host:port addresses.
func (b *builder) redisAddrs(m *rawMeta, addrs []string) []string {
	if !m.known("addrs") {
		return addrs
	}
	if len(addrs) == 0 {
		b.errorf(m.valueAt("addrs"), "Missing addresses", "addrs is empty; list at least one node as \"host:port\".")
	}
	for i, a := range addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			b.errorf(m.elemAt("addrs", i), "Invalid address", "%q is not host:port; write it as \"redis-0.redis:6379\".", a)
		}
	}
	return addrs
}
