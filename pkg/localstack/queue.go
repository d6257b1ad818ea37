package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	cfnsqs "github.com/awslabs/goformation/v7/cloudformation/sqs"
)

// maxQueueNameLength is SQS's limit, including a ".fifo" suffix.
const maxQueueNameLength = 80

// queueProvisioner creates a template's queues, each after the queues that
// its redrive policies reference.
type queueProvisioner struct {
	client   *sqs.Client
	prefix   string
	queues   map[string]*cfnsqs.Queue
	res      *Resources
	visiting map[string]bool // logical ids on the current dependency path
}

func (qp *queueProvisioner) ensure(ctx context.Context, id string) error {
	if _, done := qp.res.Queues[id]; done {
		return nil
	}
	if qp.visiting[id] {
		return fmt.Errorf("provision queue %s: its redrive policies reference each other in a cycle", id)
	}
	qp.visiting[id] = true
	defer delete(qp.visiting, id)

	spec := qp.queues[id]
	for _, dep := range queueReferences(spec) {
		if _, ok := qp.queues[dep]; !ok {
			return fmt.Errorf("provision queue %s: its redrive policy references %s, which is not an AWS::SQS::Queue in the template", id, dep)
		}
		if err := qp.ensure(ctx, dep); err != nil {
			return err
		}
	}

	name := qp.prefix + id
	if spec.FifoQueue != nil && *spec.FifoQueue {
		name += ".fifo"
	}
	if len(name) > maxQueueNameLength {
		return fmt.Errorf("provision queue %s: name %q is longer than %d characters", id, name, maxQueueNameLength)
	}
	attributes, err := qp.attributes(spec)
	if err != nil {
		return fmt.Errorf("provision queue %s: %w", id, err)
	}
	queue, err := ensureQueue(ctx, qp.client, name, attributes)
	if err != nil {
		return fmt.Errorf("provision queue %s (%s): %w", id, name, err)
	}
	qp.res.Queues[id] = queue
	return nil
}

// attributes converts the queue properties that change message delivery
// into SQS attributes. Fn::GetAtt references in the redrive policies are
// replaced with the referenced local queue's attribute.
func (qp *queueProvisioner) attributes(spec *cfnsqs.Queue) (map[string]string, error) {
	attrs := map[string]string{}
	setInt := func(name string, v *int) {
		if v != nil {
			attrs[name] = strconv.Itoa(*v)
		}
	}
	setBool := func(name string, v *bool) {
		if v != nil {
			attrs[name] = strconv.FormatBool(*v)
		}
	}
	setInt(string(types.QueueAttributeNameDelaySeconds), spec.DelaySeconds)
	setInt(string(types.QueueAttributeNameMaximumMessageSize), spec.MaximumMessageSize)
	setInt(string(types.QueueAttributeNameMessageRetentionPeriod), spec.MessageRetentionPeriod)
	setInt(string(types.QueueAttributeNameReceiveMessageWaitTimeSeconds), spec.ReceiveMessageWaitTimeSeconds)
	setInt(string(types.QueueAttributeNameVisibilityTimeout), spec.VisibilityTimeout)
	setBool(string(types.QueueAttributeNameFifoQueue), spec.FifoQueue)
	setBool(string(types.QueueAttributeNameContentBasedDeduplication), spec.ContentBasedDeduplication)

	for name, policy := range map[types.QueueAttributeName]interface{}{
		types.QueueAttributeNameRedrivePolicy:      spec.RedrivePolicy,
		types.QueueAttributeNameRedriveAllowPolicy: spec.RedriveAllowPolicy,
	} {
		if policy == nil {
			continue
		}
		value, err := qp.policyJSON(policy)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		attrs[string(name)] = value
	}
	return attrs, nil
}

// policyJSON returns a redrive policy as the JSON string that SQS takes.
// The template may give the policy as an object or as a JSON string.
func (qp *queueProvisioner) policyJSON(policy interface{}) (string, error) {
	if s, ok := policy.(string); ok {
		if err := json.Unmarshal([]byte(s), &policy); err != nil {
			return "", fmt.Errorf("invalid JSON %q: %w", s, err)
		}
	}
	resolved, err := qp.resolve(policy)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(resolved)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// resolve returns v with every Fn::GetAtt reference to a provisioned queue
// replaced by that queue's Arn, QueueName or QueueUrl.
func (qp *queueProvisioner) resolve(v interface{}) (interface{}, error) {
	switch v := v.(type) {
	case map[string]interface{}:
		out := make(map[string]interface{}, len(v))
		for k, item := range v {
			r, err := qp.resolve(item)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []interface{}:
		out := make([]interface{}, 0, len(v))
		for _, item := range v {
			r, err := qp.resolve(item)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	case string:
		id, attribute, ok := parseGetAtt(v)
		if !ok {
			return v, nil
		}
		queue, ok := qp.res.Queues[id]
		if !ok {
			return nil, fmt.Errorf("resolve !GetAtt %s.%s: queue %s is not provisioned", id, attribute, id)
		}
		switch attribute {
		case "Arn":
			return queue.ARN, nil
		case "QueueName":
			return queue.Name, nil
		case "QueueUrl":
			return queue.URL, nil
		}
		return nil, fmt.Errorf("resolve !GetAtt %s.%s: unknown queue attribute %q, want Arn, QueueName or QueueUrl", id, attribute, attribute)
	}
	return v, nil
}

// queueReferences returns the logical ids that the queue's redrive
// policies reference through Fn::GetAtt. A policy written as a JSON string
// holds no Fn::GetAtt, because the template's YAML tags do not apply inside
// strings.
func queueReferences(spec *cfnsqs.Queue) []string {
	var ids []string
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch v := v.(type) {
		case map[string]interface{}:
			for _, k := range sortedKeys(v) {
				walk(v[k])
			}
		case []interface{}:
			for _, item := range v {
				walk(item)
			}
		case string:
			if id, _, ok := parseGetAtt(v); ok {
				ids = append(ids, id)
			}
		}
	}
	walk(spec.RedrivePolicy)
	walk(spec.RedriveAllowPolicy)
	return ids
}

// ensureQueue creates the queue unless a queue with that name exists, and
// returns its URL and ARN. An existing queue keeps its attributes.
func ensureQueue(ctx context.Context, client *sqs.Client, name string, attributes map[string]string) (Queue, error) {
	queue := Queue{Name: name}

	got, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var notFound *types.QueueDoesNotExist
	switch {
	case err == nil:
		queue.URL = aws.ToString(got.QueueUrl)
	case errors.As(err, &notFound):
		created, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attributes})
		if err != nil {
			return queue, fmt.Errorf("create queue: %w", err)
		}
		queue.URL = aws.ToString(created.QueueUrl)
	default:
		return queue, fmt.Errorf("get queue URL: %w", err)
	}

	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queue.URL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return queue, fmt.Errorf("get queue ARN: %w", err)
	}
	queue.ARN = out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if queue.ARN == "" {
		return queue, fmt.Errorf("get queue ARN: no QueueArn attribute for %s", queue.URL)
	}
	return queue, nil
}

func deleteQueue(ctx context.Context, client *sqs.Client, url string) error {
	_, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	var notFound *types.QueueDoesNotExist
	if err != nil && !errors.As(err, &notFound) {
		return err
	}
	return nil
}
