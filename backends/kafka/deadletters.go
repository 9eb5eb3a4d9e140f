package kafka

import (
	"context"
	"fmt"
	"slices"

	"github.com/IBM/sarama"

	"github.com/openhqm/openhqm/backends"
)

// DeadLetters returns up to max of the newest entries of the dead-letter
// topic, newest first, for inspection (admin endpoints, tests). It reads the
// last max records of every partition; records that do not decode are
// skipped. It does not consume them for any group.
func (q *Queue) DeadLetters(ctx context.Context, max int) ([]backends.DeadLetter, error) {
	if q.isClosed() {
		return nil, fmt.Errorf("kafka: dead letters: %w", backends.ErrClosed)
	}
	if max <= 0 {
		return nil, nil
	}
	c, err := q.connection(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka: dead letters: %w", err)
	}
	topic := q.opts.DeadLetterTopic
	parts, err := c.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("kafka: partitions of %s: %w: %w", topic, backends.ErrUnavailable, err)
	}
	consumer, err := sarama.NewConsumerFromClient(c.client)
	if err != nil {
		return nil, fmt.Errorf("kafka: dead letters: %w: %w", backends.ErrUnavailable, err)
	}
	defer consumer.Close()
	var out []backends.DeadLetter
	for _, p := range parts {
		newest, err := c.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		oldest, err := c.client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return nil, fmt.Errorf("kafka: offsets of %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		from := max64(newest-int64(max), oldest)
		if from >= newest {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, from)
		if err != nil {
			return nil, fmt.Errorf("kafka: read %s/%d: %w: %w", topic, p, backends.ErrUnavailable, err)
		}
		for off := from; off < newest; {
			select {
			case msg := <-pc.Messages():
				off = msg.Offset + 1
				if dl, err := DecodeDeadLetter(msg); err == nil {
					out = append(out, *dl)
				}
			case <-ctx.Done():
				pc.Close()
				return nil, ctx.Err()
			}
		}
		pc.Close()
	}
	slices.SortStableFunc(out, func(a, b backends.DeadLetter) int { return b.At.Compare(a.At) })
	if len(out) > max {
		out = out[:max]
	}
	return out, nil
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}
