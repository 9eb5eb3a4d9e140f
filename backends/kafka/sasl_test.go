package kafka

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/openhqm/openhqm/backends"
)

// TestSASL: each mechanism authenticates (a job goes through), and with a
// wrong password the queue stays unavailable.
func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(
				kfake.Ports(0),
				kfake.SeedTopics(1, testTopic, testTopic+"-retry", testTopic+"-dlq"),
				kfake.GroupMinSessionTimeout(100*time.Millisecond),
				kfake.EnableSASL(),
				kfake.Superuser(mech, "openhqm", "s3cret"),
			)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			opts := testOptions(c.ListenAddrs())
			opts.SASLMechanism, opts.SASLUser, opts.SASLPassword = mech, "openhqm", "s3cret"
			q := newQueue(t, opts)
			enqueue(t, q, newJob("", "x"))
			ack(t, q, receiveN(t, q, "w", 1, 10*time.Second)[0])

			opts.SASLPassword = "wrong"
			tune := opts.Tune
			opts.Tune = func(c *sarama.Config) { tune(c); c.Metadata.Retry.Max = 0 }
			refused := newQueue(t, opts)
			if _, err := refused.Stats(context.Background()); !errors.Is(err, backends.ErrUnavailable) {
				t.Fatalf("wrong password: Stats answered %v, want ErrUnavailable", err)
			}
		})
	}
}
