package sqs

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/openhqm/openhqm/backends"
)

// Operator tooling on an SQS queue (backends.Inspector). SQS offers no way
// to read a message without receiving it, so the dead letters are read by
// receiving them for a short while (inspectHold) and, unless they are sent
// back or dropped, made visible again at once. Jobs waiting in the main
// queue or in flight are not listed (receiving them would take them from
// the workers); Stats counts them.
//
// A job cannot be withdrawn from SQS by id: a cancel is recorded in the
// result store, and a worker marks every first delivery processing there
// before the replay (WithdrawsCancelled is false), which a cancelled record
// refuses.

var _ backends.Inspector = (*Queue)(nil)

// inspectHold is how long a dead letter read by the tooling stays hidden
// from another reader; it is made visible again as soon as the tooling is
// done with it.
const inspectHold = 60 * time.Second

// WithdrawsCancelled is false: see above.
func (q *Queue) WithdrawsCancelled() bool { return false }

// Cancel does nothing: the worker honours the job's cancelled record.
func (q *Queue) Cancel(ctx context.Context, id string) error { return nil }

// deadMessage is a received dead letter.
type deadMessage struct {
	entry   backends.Entry
	ok      bool // the body decoded
	body    string
	receipt string
}

// eachDead receives the dead letters in batches of ten, hidden for
// inspectHold, and calls each with every one until it answers false or
// the queue answers none; what each keeps (true) is made visible again
// afterwards, what it consumed (false) is not.
func (q *Queue) eachDead(ctx context.Context, each func(m *deadMessage) (keep bool, more bool)) error {
	if q.closed.Load() {
		return q.errorf("dead letters: %w", backends.ErrClosed)
	}
	url, err := q.deadLetterURL(ctx)
	if err != nil {
		return err
	}
	var keep []string
	defer func() {
		// Visible again, for the next reader (and the next redrive). One
		// request each: goaws, which the tests run against, has no batch
		// form of it.
		for _, r := range keep {
			q.client.ChangeMessageVisibility(context.WithoutCancel(ctx), &awssqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(url), ReceiptHandle: aws.String(r), VisibilityTimeout: 0})
		}
	}()
	for {
		out, err := q.client.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl:              aws.String(url),
			MaxNumberOfMessages:   10,
			VisibilityTimeout:     int32(inspectHold / time.Second),
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			return q.errorf("read dead letters: %w", unavailable(ctx, err))
		}
		if len(out.Messages) == 0 {
			return nil
		}
		for i, m := range out.Messages {
			dm := deadOf(m)
			k, more := each(dm)
			if k {
				keep = append(keep, dm.receipt)
			}
			if !more {
				for _, rest := range out.Messages[i+1:] {
					keep = append(keep, aws.ToString(rest.ReceiptHandle))
				}
				return nil
			}
		}
	}
}

func deadOf(m types.Message) *deadMessage {
	dm := &deadMessage{body: aws.ToString(m.Body), receipt: aws.ToString(m.ReceiptHandle)}
	job, err := decode(dm.body)
	if err != nil {
		return dm
	}
	dm.ok = true
	e := backends.Entry{Job: job, State: backends.StateDead}
	attr := func(name string) string { return aws.ToString(m.MessageAttributes[name].StringValue) }
	e.Reason = attr(attrReason)
	e.Attempts, _ = strconv.Atoi(attr(attrAttempts))
	e.LastStatus, _ = strconv.Atoi(attr(attrLastStatus))
	if ms, err := strconv.ParseInt(attr(attrDeadAt), 10, 64); err == nil {
		e.At = time.UnixMilli(ms).UTC()
	}
	dm.entry = e
	return dm
}

// List answers the dead letters that pass f.
func (q *Queue) List(ctx context.Context, f backends.Filter) ([]backends.Entry, error) {
	if f.State != "" && f.State != backends.StateDead {
		return nil, nil
	}
	var out []backends.Entry
	err := q.eachDead(ctx, func(m *deadMessage) (bool, bool) {
		if m.ok && f.Match(&m.entry) {
			out = append(out, m.entry)
		}
		return true, f.Limit <= 0 || len(out) < f.Limit
	})
	return out, err
}

// Redrive sends the selected dead letters back to the queue (same body, a
// fresh receive count) and deletes each from the dead-letter queue once
// SQS stored it. A job whose delete fails after the send is sent again by
// the next redrive unless the caller's Prepare skips it.
func (q *Queue) Redrive(ctx context.Context, o backends.RedriveOptions) (int, error) {
	url, err := q.deadLetterURL(ctx)
	if err != nil {
		return 0, err
	}
	moved := 0
	var failed error
	err = q.eachDead(ctx, func(m *deadMessage) (bool, bool) {
		if !m.ok || !o.Selects(m.entry.Job) {
			return true, true
		}
		if o.Prepare != nil {
			err := o.Prepare(ctx, m.entry.Job)
			if errors.Is(err, backends.ErrSkip) {
				return !q.deleteDead(ctx, url, m.receipt), true
			}
			if err != nil {
				failed = err
				return true, false
			}
		}
		in := &awssqs.SendMessageInput{QueueUrl: aws.String(q.opts.QueueURL), MessageBody: aws.String(m.body)}
		in.MessageGroupId, in.MessageDeduplicationId = q.group(q.opts.QueueURL, m.entry.Job)
		if _, err := q.client.SendMessage(ctx, in); err != nil {
			failed = q.errorf("redrive %s: %w", m.entry.Job.ID, unavailable(ctx, err))
			return true, false
		}
		moved++
		if !q.deleteDead(ctx, url, m.receipt) {
			failed = q.errorf("redrive %s: sent back, but not deleted from the dead letters", m.entry.Job.ID)
			return true, false
		}
		return false, true
	})
	if failed != nil {
		return moved, failed
	}
	return moved, err
}

// deleteDead deletes a dead letter and reports whether it did.
func (q *Queue) deleteDead(ctx context.Context, url, receipt string) bool {
	_, err := q.client.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String(receipt)})
	return err == nil
}

// Purge deletes the dead letters dead-lettered before cutoff (all when
// zero) and answers how many.
func (q *Queue) Purge(ctx context.Context, cutoff time.Time) (int, error) {
	url, err := q.deadLetterURL(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = q.eachDead(ctx, func(m *deadMessage) (bool, bool) {
		if !cutoff.IsZero() && m.ok && !m.entry.At.Before(cutoff) {
			return true, true
		}
		if q.deleteDead(ctx, url, m.receipt) {
			n++
			return false, true
		}
		return true, true
	})
	return n, err
}
