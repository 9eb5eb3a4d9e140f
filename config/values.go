package config

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agext/levenshtein"
)

// parseDuration accepts Go duration syntax ("30s", "1m30s", "250ms").
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, &valueError{quoted: "empty duration", plain: "is empty"}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, newValueError(s, "is not a duration; write a number with a unit such as \"30s\", \"1m30s\" or \"250ms\"", "")
	}
	if d < 0 {
		return 0, newValueError(s, "is negative; durations must be zero or more", "")
	}
	return d, nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, // as Kubernetes writes them
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000},
	{"B", 1},
}

// parseSize accepts a byte count ("1048576") or a number with a unit, in any
// case ("512KB", "10MiB", "10Mi", "10mb"; KB/MB/GB are powers of 1000,
// KiB/MiB/GiB and Ki/Mi/Gi of 1024).
func parseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if len(s) >= len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			mult = u.mult
			s = strings.TrimSpace(s[:len(s)-len(u.suffix)])
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (mult > 1 && n > (1<<62)/mult) {
		return 0, newValueError(orig, "is not a size; write a byte count such as \"1048576\" or a number with a unit such as \"512KB\" or \"10MiB\"", "")
	}
	return n * mult, nil
}

// parseHTTPURL accepts absolute http and https URLs with a host.
func parseHTTPURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") { // "127.0.0.1:8080" parses as a scheme, confusingly
		return nil, newValueError(s, "must start with http:// or https://", "")
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, newValueError(s, "is not a URL", fmt.Sprintf("is not a URL: %v", unwrapURLError(err)))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, newValueError(s, "must start with http:// or https://", "")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, newValueError(s, "has no host; write it as \"http://host:port/optional/base\"", "")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, newValueError(s, "has an invalid port", fmt.Sprintf("has an invalid port %q", p))
		}
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return nil, newValueError(s, "has a fragment (#...), which is never sent to a server; remove it", "")
	}
	if u.User != nil {
		return nil, newValueError(s, "carries credentials; use an auth block instead", "")
	}
	return u, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// parseRedisURL accepts redis://, rediss:// and unix:// URLs.
func parseRedisURL(s string) error {
	if !strings.Contains(s, "://") {
		return newValueError(s, "must start with redis://, rediss:// or unix://", "")
	}
	u, err := url.Parse(s)
	if err != nil {
		return newValueError(s, "is not a URL", fmt.Sprintf("is not a URL: %v", unwrapURLError(err)))
	}
	switch u.Scheme {
	case "redis", "rediss":
		if u.Host == "" {
			return newValueError(s, "has no host; write it as \"redis://host:6379/0\"", "")
		}
	case "unix":
		if u.Path == "" {
			return newValueError(s, "has no socket path", "")
		}
	default:
		return newValueError(s, "must start with redis://, rediss:// or unix://", "")
	}
	return nil
}

// parseListen accepts "host:port", ":port" and "[v6]:port".
func parseListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return newValueError(s, "is not host:port; write it as \":8000\" or \"127.0.0.1:8000\"", "")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return newValueError(s, "has an invalid port; use a number from 0 to 65535", fmt.Sprintf("has an invalid port %q; use a number from 0 to 65535", port))
	}
	if strings.ContainsAny(host, " /") {
		return newValueError(s, "has an invalid host", fmt.Sprintf("has an invalid host %q", host))
	}
	return nil
}

// parseHostPort accepts "host:port" with a non-empty host (Kafka brokers).
func parseHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return newValueError(s, "is not host:port; write it as \"kafka-0.kafka:9092\"", "")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return newValueError(s, "has an invalid port", fmt.Sprintf("has an invalid port %q", port))
	}
	return nil
}

// IsToken reports whether s is an RFC 9110 token (header names, methods).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidHeaderValue rejects control characters (CR and LF would split headers).
func ValidHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

// hopByHop are the headers RFC 9110 §7.6.1 says a proxy must not forward.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// suggest returns the candidate closest to s when it is close enough to be a
// plausible typo, else "".
func suggest(s string, candidates []string) string {
	limit := 2
	if len(s) > 8 {
		limit = len(s) / 3
	}
	best, bestD := "", limit+1
	ls, n := strings.ToLower(s), utf8.RuneCountInString(s)
	for _, c := range candidates {
		// The distance is at least the difference of the lengths: most
		// candidates of a large configuration are ruled out without it.
		if d := utf8.RuneCountInString(c) - n; d > limit || -d > limit {
			continue
		}
		if d := levenshtein.Distance(ls, strings.ToLower(c), nil); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean renders a suggestion as a sentence, or "" when there is none.
func didYouMean(s string, candidates []string) string {
	if m := suggest(s, candidates); m != "" {
		return fmt.Sprintf(" Did you mean %q?", m)
	}
	return ""
}

// quoteList renders names for a diagnostic, the first 20 of a longer list
// followed by how many more there are.
func quoteList(xs []string) string {
	const most = 20
	q := make([]string, 0, min(len(xs), most)+1)
	for _, x := range xs[:min(len(xs), most)] {
		q = append(q, strconv.Quote(x))
	}
	if len(xs) > most {
		q = append(q, fmt.Sprintf("and %d more", len(xs)-most))
	}
	return strings.Join(q, ", ")
}
