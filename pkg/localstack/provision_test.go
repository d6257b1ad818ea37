package localstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/awslabs/goformation/v7/cloudformation"

	"github.com/signsecure/signsecure/pkg/localstack"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

func TestProvisionTableIndexes(t *testing.T) {
	env := localstacktest.New(t)
	ctx := t.Context()

	out, err := env.Clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(env.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	table := out.Table
	if got := keySchemaString(table.KeySchema); got != "PK HASH, SK RANGE" {
		t.Errorf("table keys = %s, want PK HASH, SK RANGE", got)
	}

	want := map[string]string{
		"GSI1": "GSI1PK HASH, GSI1SK RANGE",
		"GSI2": "GSI2PK HASH, GSI2SK RANGE",
	}
	got := map[string]string{}
	for _, gsi := range table.GlobalSecondaryIndexes {
		got[aws.ToString(gsi.IndexName)] = keySchemaString(gsi.KeySchema)
		if gsi.Projection == nil || gsi.Projection.ProjectionType != ddbtypes.ProjectionTypeAll {
			t.Errorf("index %s projection = %+v, want ALL", aws.ToString(gsi.IndexName), gsi.Projection)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("global secondary indexes = %v, want %v", got, want)
	}
}

func TestProvisionTableStream(t *testing.T) {
	env := localstacktest.New(t)
	ctx := t.Context()

	out, err := env.Clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(env.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	spec := out.Table.StreamSpecification
	if spec == nil || !aws.ToBool(spec.StreamEnabled) {
		t.Fatalf("StreamSpecification = %+v, want an enabled stream", spec)
	}
	if spec.StreamViewType != ddbtypes.StreamViewTypeNewImage {
		t.Errorf("StreamViewType = %s, want NEW_IMAGE", spec.StreamViewType)
	}
	streamARN := aws.ToString(out.Table.LatestStreamArn)
	if streamARN == "" {
		t.Fatal("LatestStreamArn is empty")
	}

	stream, err := env.Clients.DynamoDBStreams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN)})
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.StreamDescription.StreamViewType; got != streamtypes.StreamViewTypeNewImage {
		t.Errorf("stream %s view type = %s, want NEW_IMAGE", streamARN, got)
	}
}

func TestProvisionTableTTL(t *testing.T) {
	env := localstacktest.New(t)

	out, err := env.Clients.DynamoDB.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(env.TableName)})
	if err != nil {
		t.Fatal(err)
	}
	ttl := out.TimeToLiveDescription
	if ttl == nil {
		t.Fatal("TimeToLiveDescription is missing")
	}
	if ttl.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled {
		t.Errorf("TTL status = %s, want ENABLED", ttl.TimeToLiveStatus)
	}
	if got := aws.ToString(ttl.AttributeName); got != "expires_at" {
		t.Errorf("TTL attribute = %q, want expires_at", got)
	}
}

func TestProvisionQueueAttributes(t *testing.T) {
	env := localstacktest.New(t)
	tests := []struct {
		queue, deadLetterQueue string
	}{
		{"WebhookDeliveriesQueue", "WebhookDeliveriesDeadLetterQueue"},
		{"EmailsQueue", "EmailsDeadLetterQueue"},
	}
	for _, tt := range tests {
		t.Run(tt.queue, func(t *testing.T) {
			queue, dlq := env.Queues[tt.queue], env.Queues[tt.deadLetterQueue]
			if !strings.HasPrefix(queue.Name, env.Prefix) {
				t.Errorf("queue name %q does not start with prefix %q", queue.Name, env.Prefix)
			}

			attrs := queueAttributes(t, env, queue.URL)
			if got := attrs["VisibilityTimeout"]; got != "180" {
				t.Errorf("VisibilityTimeout = %q, want 180", got)
			}
			if got := attrs["QueueArn"]; got != queue.ARN {
				t.Errorf("QueueArn = %q, want %q", got, queue.ARN)
			}

			var policy struct {
				DeadLetterTargetARN string          `json:"deadLetterTargetArn"`
				MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
			}
			if err := json.Unmarshal([]byte(attrs["RedrivePolicy"]), &policy); err != nil {
				t.Fatalf("RedrivePolicy %q: %v", attrs["RedrivePolicy"], err)
			}
			if policy.DeadLetterTargetARN != dlq.ARN {
				t.Errorf("deadLetterTargetArn = %q, want %q", policy.DeadLetterTargetARN, dlq.ARN)
			}
			// SQS returns the count as a number; a string is accepted too.
			if n, err := strconv.Unquote(string(policy.MaxReceiveCount)); err == nil {
				policy.MaxReceiveCount = json.RawMessage(n)
			}
			if got := string(policy.MaxReceiveCount); got != "3" {
				t.Errorf("maxReceiveCount = %s, want 3", got)
			}

			dlqAttrs := queueAttributes(t, env, dlq.URL)
			if got := dlqAttrs["MessageRetentionPeriod"]; got != "1209600" {
				t.Errorf("dead-letter MessageRetentionPeriod = %q, want 1209600", got)
			}
			if got := dlqAttrs["QueueArn"]; got != dlq.ARN {
				t.Errorf("dead-letter QueueArn = %q, want %q", got, dlq.ARN)
			}
		})
	}
}

func TestQueueMovesMessageToDeadLetterQueue(t *testing.T) {
	env := localstacktest.New(t)
	ctx := t.Context()
	queue := env.Queues["WebhookDeliveriesQueue"]
	dlq := env.Queues["WebhookDeliveriesDeadLetterQueue"]

	body := "redrive test " + env.Prefix
	sent, err := env.Clients.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queue.URL), MessageBody: aws.String(body)})
	if err != nil {
		t.Fatal(err)
	}

	// Receive without deleting, with a 1 s visibility timeout, so the
	// message comes back until maxReceiveCount (3) receives are used up.
	for want := 1; want <= 3; want++ {
		msgs := receive(t, env, queue.URL, 5)
		if len(msgs) != 1 {
			t.Fatalf("receive %d: got %d messages, want 1", want, len(msgs))
		}
		if got := aws.ToString(msgs[0].MessageId); got != aws.ToString(sent.MessageId) {
			t.Errorf("receive %d: message id %s, want %s", want, got, aws.ToString(sent.MessageId))
		}
		count := msgs[0].Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]
		if count != strconv.Itoa(want) {
			t.Errorf("receive %d: ApproximateReceiveCount = %q, want %d", want, count, want)
		}
	}

	if msgs := receive(t, env, queue.URL, 3); len(msgs) != 0 {
		t.Errorf("receive 4: got %d messages from the work queue, want 0 (moved to the dead-letter queue)", len(msgs))
	}
	msgs := receive(t, env, dlq.URL, 5)
	if len(msgs) != 1 {
		t.Fatalf("dead-letter queue: got %d messages, want 1", len(msgs))
	}
	if got := aws.ToString(msgs[0].Body); got != body {
		t.Errorf("dead-letter message body = %q, want %q", got, body)
	}
}

func TestProvisionBucketPutGet(t *testing.T) {
	env := localstacktest.New(t)
	ctx := t.Context()
	content := []byte("%PDF-1.7 test document\n")

	_, err := env.Clients.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(env.BucketName),
		Key:         aws.String("envelopes/env_1/documents/doc_1.pdf"),
		Body:        bytes.NewReader(content),
		ContentType: aws.String("application/pdf"),
	})
	if err != nil {
		t.Fatal(err)
	}

	out, err := env.Clients.S3.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(env.BucketName),
		Key:    aws.String("envelopes/env_1/documents/doc_1.pdf"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("object content = %q, want %q", got, content)
	}
	if ct := aws.ToString(out.ContentType); ct != "application/pdf" {
		t.Errorf("ContentType = %q, want application/pdf", ct)
	}
}

func TestProvisionKeepsExistingResources(t *testing.T) {
	env := localstacktest.New(t)
	ctx := t.Context()
	key := map[string]ddbtypes.AttributeValue{
		"PK": &ddbtypes.AttributeValueMemberS{Value: "USER#usr_1"},
		"SK": &ddbtypes.AttributeValueMemberS{Value: "PROFILE"},
	}
	_, err := env.Clients.DynamoDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(env.TableName), Item: key})
	if err != nil {
		t.Fatal(err)
	}

	again, err := localstack.Provision(ctx, env.Clients, openTemplate(t), env.Prefix)
	if err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if !reflect.DeepEqual(again, env.Resources) {
		t.Errorf("second Provision = %+v, want %+v", again, env.Resources)
	}
	item, err := env.Clients.DynamoDB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(env.TableName), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if item.Item == nil {
		t.Error("item written before the second Provision is gone: the table was recreated")
	}
}

func TestDeleteProvisioned(t *testing.T) {
	env := localstacktest.New(t)
	ctx := t.Context()

	prefix := env.Prefix + "del-"
	res, err := localstack.Provision(ctx, env.Clients, openTemplate(t), prefix)
	if err != nil {
		t.Fatal(err)
	}
	bucket := res.Buckets["DocumentsBucket"]
	_, err = env.Clients.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("a.txt"), Body: strings.NewReader("a")})
	if err != nil {
		t.Fatal(err)
	}

	if err := localstack.DeleteProvisioned(ctx, env.Clients, res); err != nil {
		t.Fatalf("DeleteProvisioned: %v", err)
	}

	_, err = env.Clients.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(res.Tables["Table"])})
	var noTable *ddbtypes.ResourceNotFoundException
	if !errors.As(err, &noTable) {
		t.Errorf("DescribeTable after delete: err = %v, want ResourceNotFoundException", err)
	}
	for id, q := range res.Queues {
		_, err := env.Clients.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.Name)})
		var noQueue *sqstypes.QueueDoesNotExist
		if !errors.As(err, &noQueue) {
			t.Errorf("GetQueueUrl(%s) after delete: err = %v, want QueueDoesNotExist", id, err)
		}
	}
	_, err = env.Clients.S3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	var noBucket *s3types.NotFound
	if !errors.As(err, &noBucket) {
		t.Errorf("HeadBucket after delete: err = %v, want NotFound", err)
	}

	if err := localstack.DeleteProvisioned(ctx, env.Clients, res); err != nil {
		t.Errorf("second DeleteProvisioned: %v, want nil for resources already gone", err)
	}
}

func TestProvisionRejectsInvalidPrefix(t *testing.T) {
	// No emulator is needed: the prefix is checked before any request.
	clients := localstack.NewClients(localstack.Endpoints{
		DynamoDB: "http://127.0.0.1:1", SQS: "http://127.0.0.1:1", S3: "http://127.0.0.1:1", SES: "http://127.0.0.1:1",
	})
	tmpl := openTemplate(t)
	for _, prefix := range []string{"Upper-", "-leading", "has space-", "under_score-", "dot."} {
		_, err := localstack.Provision(context.Background(), clients, tmpl, prefix)
		if err == nil || !strings.Contains(err.Error(), "invalid name prefix") {
			t.Errorf("Provision with prefix %q: err = %v, want an invalid name prefix error", prefix, err)
		}
	}
}

func openTemplate(t *testing.T) *cloudformation.Template {
	t.Helper()
	root, err := localstack.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := localstack.OpenTemplate(filepath.Join(root, localstack.TemplateFile))
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func queueAttributes(t *testing.T, env *localstacktest.Env, url string) map[string]string {
	t.Helper()
	out, err := env.Clients.SQS.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes(%s): %v", url, err)
	}
	return out.Attributes
}

// receive long-polls the queue for up to waitSeconds and hides what it
// receives for one second.
func receive(t *testing.T, env *localstacktest.Env, url string, waitSeconds int32) []sqstypes.Message {
	t.Helper()
	out, err := env.Clients.SQS.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         1,
		WaitTimeSeconds:             waitSeconds,
		VisibilityTimeout:           1,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage(%s): %v", url, err)
	}
	return out.Messages
}

func keySchemaString(keys []ddbtypes.KeySchemaElement) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, aws.ToString(k.AttributeName)+" "+string(k.KeyType))
	}
	return strings.Join(parts, ", ")
}
