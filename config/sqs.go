package config

import (
	"fmt"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sqsMaxVisibility is SQS's longest visibility timeout: a lease cannot be
// longer.
const sqsMaxVisibility = 12 * time.Hour

// SQS queue names: letters, digits, hyphens and underscores, at most 80
// characters, ".fifo" included for a FIFO queue.
var (
	sqsName     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)
	sqsFIFOName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,75}\.fifo$`)
	awsRegion   = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)
)

func validSQSName(n string) bool { return sqsName.MatchString(n) || sqsFIFOName.MatchString(n) }

// sqsQueueName is the queue name of a queue URL: its last path segment.
func sqsQueueName(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	p := strings.TrimSuffix(u.Path, "/")
	return p[strings.LastIndexByte(p, '/')+1:]
}

// sqsDeadLetterFor is the default dead-letter queue of the queue named
// name: name + "-dlq", before ".fifo" for a FIFO queue (SQS wants a FIFO
// queue's dead letters in a FIFO queue).
func sqsDeadLetterFor(name string) string {
	if base, ok := strings.CutSuffix(name, ".fifo"); ok {
		return base + "-dlq.fifo"
	}
	return name + "-dlq"
}

// awsSQSHost reports whether host is an AWS SQS host, and the region it
// names ("" when it names none).
func awsSQSHost(host string) (aws bool, region string) {
	host = strings.ToLower(host)
	if !strings.HasSuffix(host, ".amazonaws.com") && !strings.HasSuffix(host, ".amazonaws.com.cn") {
		return false, ""
	}
	parts := strings.Split(host, ".")
	switch {
	case host == "queue.amazonaws.com": // the legacy host of us-east-1
		return true, "us-east-1"
	case len(parts) >= 4 && (parts[0] == "sqs" || parts[0] == "sqs-fips"):
		return true, parts[1]
	case len(parts) >= 4 && parts[1] == "queue":
		return true, parts[0]
	}
	return true, ""
}

// parseSQSURL accepts an http or https URL whose last path segment is a
// valid queue name, without credentials, query or fragment.
func parseSQSURL(s string) (*url.URL, error) {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return nil, newValueError(s, "carries credentials; SQS credentials come from the AWS SDK's default chain (environment, shared config, web identity), never from a URL", "")
	}
	u, err := parseHTTPURL(s)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || strings.Contains(s, "?") {
		return nil, newValueError(s, "has a query (?...); a queue URL has none", "")
	}
	if name := sqsQueueName(s); !validSQSName(name) {
		return nil, newValueError(s, "does not end in a queue name (1 to 80 letters, digits, - and _, \".fifo\" included for a FIFO queue); write it as \"https://sqs.eu-west-1.amazonaws.com/123456789012/jobs\"", "")
	}
	if aws, _ := awsSQSHost(u.Hostname()); aws && len(strings.Split(strings.Trim(u.Path, "/"), "/")) != 2 {
		return nil, newValueError(s, "is not an AWS queue URL; write it as \"https://sqs.REGION.amazonaws.com/ACCOUNT/NAME\"", "")
	}
	return u, nil
}

// regionIn shows region, found in the value of attribute attr, for a
// diagnostic: quoted, or as where it came from when env() or file() gave
// the value.
func regionIn(m *rawMeta, attr, region string) string {
	if o := m.originOf(attr); o != "" {
		return "the region named in " + o
	}
	return strconv.Quote(region)
}

// sqsRegionAttr is the attribute the queue's region was taken from.
func sqsRegionAttr(m *rawMeta) string {
	if m.has("region") {
		return "region"
	}
	return "queue_url"
}

func (b *builder) buildSQS(r *rawSQS) *SQSQueue {
	m := &r.rawMeta
	s := &SQSQueue{QueueURL: r.QueueURL, Region: r.Region, Endpoint: r.Endpoint}
	s.Protocol = b.oneOf(m, "protocol", r.Protocol, "json", "Invalid protocol", []string{"json", "query"})
	if m.known("endpoint") {
		if _, err := parseHTTPURL(r.Endpoint); err != nil {
			b.errorf(m.valueAt("endpoint"), "Invalid URL", "The sqs endpoint %s.", m.tail("endpoint", err))
		}
	}
	if m.known("key_header") {
		if !IsToken(r.KeyHeader) {
			b.errorf(m.valueAt("key_header"), "Invalid header name", "%s is not a valid header name.", m.quote("key_header", r.KeyHeader))
		} else if m.known("queue_url") && !strings.HasSuffix(sqsQueueName(r.QueueURL), ".fifo") {
			b.warnf(m.at("key_header"), "Key header has no effect", "key_header sets the message group of a FIFO queue, and this queue is a standard one (its name does not end in \".fifo\"); remove key_header.")
		}
		s.KeyHeader = textproto.CanonicalMIMEHeaderKey(r.KeyHeader)
	}
	urlRegion, urlOnAWS := "", false
	if m.known("queue_url") {
		u, err := parseSQSURL(r.QueueURL)
		if err != nil {
			b.errorf(m.valueAt("queue_url"), "Invalid URL", "The sqs queue_url %s.", m.tail("queue_url", err))
		} else {
			urlOnAWS, urlRegion = awsSQSHost(u.Hostname())
			if !urlOnAWS && !m.has("endpoint") {
				fix := fmt.Sprintf("Set endpoint = %q to use the SQS-compatible server there", u.Scheme+"://"+u.Host)
				if m.originOf("queue_url") != "" {
					fix = "Set endpoint to the base URL of the SQS-compatible server there"
				}
				b.warnf(m.valueAt("queue_url"), "Queue URL not on AWS",
					"queue_url is not on an AWS SQS host, and without endpoint the SDK sends its requests to AWS's SQS in the region, not to the queue URL's host. %s.", fix)
			}
		}
	}
	if m.known("region") {
		switch {
		case r.Region == "":
			b.errorf(m.valueAt("region"), "Invalid region", "region is empty; name the queue's AWS region, such as \"eu-west-1\", or remove the attribute for the region of the queue URL.")
		case !awsRegion.MatchString(r.Region) && !m.has("endpoint"):
			b.errorf(m.valueAt("region"), "Invalid region", "%s is not an AWS region; write it as \"eu-west-1\".", m.quote("region", r.Region))
		case urlRegion != "" && r.Region != urlRegion:
			b.errorf(m.valueAt("region"), "Region mismatch", "region is %s, but queue_url names a queue in %s: the SDK sends its requests to the region's endpoint, where that queue does not exist. Remove region to use the queue URL's.", m.quote("region", r.Region), regionIn(m, "queue_url", urlRegion))
		}
	} else {
		s.Region = urlRegion
	}
	return s
}

// checkSQSQueue checks the settings of an SQS queue that are the queue
// block's: the lease against SQS's longest visibility timeout, and the
// dead-letter queue.
func (b *builder) checkSQSQueue(q *Queue, r *rawQueue) {
	m := &r.rawMeta
	if q.Lease > sqsMaxVisibility {
		b.errorf(m.valueAt("lease"), "Lease too long", "SQS keeps a message invisible for at most 12h (its longest visibility timeout), so a lease of %s cannot hold; set lease to \"12h\" or less.", m.show("lease", r.Lease))
	}
	sm := &r.SQS.rawMeta
	if !sm.known("queue_url") {
		return
	}
	name := sqsQueueName(q.SQS.QueueURL)
	if !m.known("dead_letter") {
		if !validSQSName(q.DeadLetter) && validSQSName(name) {
			b.errorf(sm.valueAt("queue_url"), "Invalid dead-letter queue", "The default dead-letter queue %q is longer than SQS's 80 characters; set dead_letter on the queue.", q.DeadLetter)
		}
		return
	}
	dl := r.DeadLetter
	switch {
	case dl == "":
		// reported as an empty name
	case strings.Contains(dl, "://"):
		u, err := parseSQSURL(dl)
		if err != nil {
			b.errorf(m.valueAt("dead_letter"), "Invalid URL", "The dead_letter queue URL %s.", m.tail("dead_letter", err))
			return
		}
		_, dlRegion := awsSQSHost(u.Hostname())
		if strings.TrimSuffix(dl, "/") == strings.TrimSuffix(q.SQS.QueueURL, "/") {
			b.errorf(m.valueAt("dead_letter"), "Dead-letter queue is the queue", "dead_letter names the queue itself: a failed job would come back as a new one. Name another queue, or remove the attribute for the default %q.", sqsDeadLetterFor(name))
		} else if region, regionFrom := q.SQS.Region, sqsRegionAttr(sm); dlRegion != "" && region != "" && dlRegion != region {
			b.errorf(m.valueAt("dead_letter"), "Region mismatch", "The dead-letter queue is in %s and the queue in another region, %s: one client sends the requests for both to the queue's regional endpoint. Use a dead-letter queue in the queue's region.", regionIn(m, "dead_letter", dlRegion), regionIn(sm, regionFrom, region))
		}
	case !validSQSName(dl):
		b.errorf(m.valueAt("dead_letter"), "Invalid queue name", "%s is not an SQS queue name or URL: a name has 1 to 80 letters, digits, - and _ (\".fifo\" included for a FIFO queue).", m.quote("dead_letter", dl))
	case dl == name:
		b.errorf(m.valueAt("dead_letter"), "Dead-letter queue is the queue", "dead_letter names the queue itself: a failed job would come back as a new one. Name another queue, or remove the attribute for the default %q.", sqsDeadLetterFor(name))
	}
}
