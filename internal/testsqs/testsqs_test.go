package testsqs

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The server speaks SQS's Query protocol, makes a message visible again
// after the queue's visibility timeout, and counts its receives as SQS
// does; a second server in the process is refused.
func TestServer(t *testing.T) {
	s := Start(t)
	if _, err := StartMain(); err == nil {
		t.Fatal("a second goaws started in the process")
	}
	ctx := context.Background()
	url := s.CreateQueues(t, "testsqs", time.Second)
	c := s.Client()
	if _, err := c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("hello")}); err != nil {
		t.Fatal(err)
	}
	var counts []string
	for deadline := time.Now().Add(10 * time.Second); len(counts) < 2 && time.Now().Before(deadline); {
		out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			if aws.ToString(m.Body) != "hello" {
				t.Fatalf("body %q", aws.ToString(m.Body))
			}
			counts = append(counts, m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
		}
	}
	if len(counts) != 2 || counts[0] != "1" || counts[1] != "2" {
		t.Errorf("receive counts %v, want [1 2]", counts)
	}
}
