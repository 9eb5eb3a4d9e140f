package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The model of an SQS queue has its defaults resolved: the region of an AWS
// queue URL, the JSON protocol, and a dead-letter queue named after the
// queue's own name (before ".fifo" for a FIFO queue).
func TestSQSQueueModel(t *testing.T) {
	cfg, files, diags, err := Load([]string{"testdata/valid/sqs.hcl"}, Options{Mode: ModeRuntime, LookupEnv: lookupTestEnv})
	if err != nil || diags.HasErrors() {
		t.Fatalf("Load: %v\n%s", err, render(files, diags))
	}
	type sqsQueue struct {
		SQS        SQSQueue
		DeadLetter string
	}
	got := map[string]sqsQueue{}
	for name, q := range cfg.Queues {
		if q.Backend != BackendSQS || q.SQS == nil {
			t.Fatalf("queue %q: backend %q, sqs %v", name, q.Backend, q.SQS)
		}
		got[name] = sqsQueue{*q.SQS, q.DeadLetter}
	}
	want := map[string]sqsQueue{
		"jobs": {
			SQSQueue{QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/openhqm-jobs", Region: "eu-west-1", Protocol: "json"},
			"https://sqs.eu-west-1.amazonaws.com/123456789012/openhqm-failed",
		},
		"orders": {
			SQSQueue{QueueURL: "https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo", Region: "us-east-1", Protocol: "json", KeyHeader: "X-Tenant"},
			"orders-dlq.fifo",
		},
		"local": {
			SQSQueue{QueueURL: "http://127.0.0.1:4100/100010001000/local", Region: "elsewhere", Endpoint: "http://127.0.0.1:4100", Protocol: "query"},
			"local_failed",
		},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("sqs queues (-want +got):\n%s", d)
	}
}

func TestAWSSQSHost(t *testing.T) {
	type res struct {
		AWS    bool
		Region string
	}
	for host, want := range map[string]res{
		"sqs.eu-west-1.amazonaws.com":          {true, "eu-west-1"},
		"sqs-fips.us-gov-west-1.amazonaws.com": {true, "us-gov-west-1"},
		"eu-central-1.queue.amazonaws.com":     {true, "eu-central-1"},
		"queue.amazonaws.com":                  {true, "us-east-1"},
		"sqs.cn-north-1.amazonaws.com.cn":      {true, "cn-north-1"},
		"localhost":                            {false, ""},
		"sqs.eu-west-1.example.com":            {false, ""},
	} {
		aws, region := awsSQSHost(host)
		if d := cmp.Diff(want, res{aws, region}); d != "" {
			t.Errorf("awsSQSHost(%q) (-want +got):\n%s", host, d)
		}
	}
}
