package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/IBM/sarama"
)

// scramClient is a SCRAM (RFC 5802) client for sarama, without channel
// binding. It keeps the module free of a SCRAM dependency. One value serves
// one conversation; sarama creates a new one per connection.
type scramClient struct {
	newHash func() hash.Hash
	user    string
	pass    string
	step    int
	nonce   string
	first   string // client-first-message-bare
	server  []byte // expected server signature
	done    bool
}

func scramSHA256() sarama.SCRAMClient { return &scramClient{newHash: sha256.New} }
func scramSHA512() sarama.SCRAMClient { return &scramClient{newHash: sha512.New} }

var errSCRAM = errors.New("scram")

func (c *scramClient) Begin(user, pass, _ string) error {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("%w: nonce: %w", errSCRAM, err)
	}
	c.user = strings.NewReplacer("=", "=3D", ",", "=2C").Replace(user)
	c.pass = pass
	c.nonce = base64.RawStdEncoding.EncodeToString(b)
	c.step = 0
	c.done = false
	return nil
}

func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.first = "n=" + c.user + ",r=" + c.nonce
		return "n,," + c.first, nil
	case 2:
		return c.final(challenge)
	case 3:
		attrs := scramAttrs(challenge)
		if e, ok := attrs["e"]; ok {
			return "", fmt.Errorf("%w: server error %q", errSCRAM, e)
		}
		sig, err := base64.StdEncoding.DecodeString(attrs["v"])
		if err != nil || subtle.ConstantTimeCompare(sig, c.server) != 1 {
			return "", fmt.Errorf("%w: server signature mismatch", errSCRAM)
		}
		c.done = true
		return "", nil
	}
	return "", fmt.Errorf("%w: unexpected step %d", errSCRAM, c.step)
}

func (c *scramClient) final(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	nonce, saltB64, iterS := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", fmt.Errorf("%w: server nonce does not extend ours", errSCRAM)
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		return "", fmt.Errorf("%w: salt: %w", errSCRAM, err)
	}
	iter, err := strconv.Atoi(iterS)
	if err != nil || iter < 1 {
		return "", fmt.Errorf("%w: iteration count %q", errSCRAM, iterS)
	}
	salted, err := pbkdf2.Key(c.newHash, c.pass, salt, iter, c.newHash().Size())
	if err != nil {
		return "", fmt.Errorf("%w: %w", errSCRAM, err)
	}
	clientKey := c.hmac(salted, "Client Key")
	h := c.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=biws,r=" + nonce
	authMsg := c.first + "," + serverFirst + "," + withoutProof
	sig := c.hmac(storedKey, authMsg)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ sig[i]
	}
	c.server = c.hmac(c.hmac(salted, "Server Key"), authMsg)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (c *scramClient) Done() bool { return c.done }

func scramAttrs(s string) map[string]string {
	m := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && len(k) == 1 {
			m[k] = v
		}
	}
	return m
}
