package localstack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/awslabs/goformation/v7/cloudformation"
)

// Resources maps the logical ids of a template's resources to the local
// resources that [Provision] made for them.
type Resources struct {
	Tables  map[string]string // logical id to table name
	Queues  map[string]Queue  // logical id to queue
	Buckets map[string]string // logical id to bucket name
}

// Queue identifies a local SQS queue.
type Queue struct {
	Name string
	URL  string
	ARN  string
}

// prefixPattern limits name prefixes to what S3 bucket names allow, the
// strictest of the three services.
var prefixPattern = regexp.MustCompile(`^([a-z0-9][a-z0-9-]*)?$`)

// Provision creates the DynamoDB tables, SQS queues and S3 buckets that
// tmpl declares, through the given clients. Each physical name is prefix
// followed by the logical id (lowercased for buckets; FIFO queues get the
// required ".fifo" suffix). Names set in the template are not used, so that
// tests can create fresh resources with a unique prefix.
//
// Provision is idempotent: a resource that already exists is kept as it is,
// even where its settings differ from the template. A queue is created after
// the queues its RedrivePolicy or RedriveAllowPolicy reference through
// Fn::GetAtt, which tmpl must keep as [OpenTemplate] does.
//
// Only the settings that the emulators act on are applied: keys, indexes,
// billing mode, the stream and TTL of tables, the queue attributes that
// change delivery, and bucket existence. Encryption, point-in-time recovery,
// public access blocks and tags are left out.
func Provision(ctx context.Context, c *Clients, tmpl *cloudformation.Template, prefix string) (*Resources, error) {
	if !prefixPattern.MatchString(prefix) {
		return nil, fmt.Errorf("provision: invalid name prefix %q: use lowercase letters, digits and hyphens, not starting with a hyphen", prefix)
	}

	res := &Resources{
		Tables:  map[string]string{},
		Queues:  map[string]Queue{},
		Buckets: map[string]string{},
	}

	tables := tmpl.GetAllDynamoDBTableResources()
	for _, id := range sortedKeys(tables) {
		name := prefix + id
		if err := ensureTable(ctx, c.DynamoDB, name, tables[id]); err != nil {
			return res, fmt.Errorf("provision table %s (%s): %w", id, name, err)
		}
		res.Tables[id] = name
	}

	qp := &queueProvisioner{client: c.SQS, prefix: prefix, queues: tmpl.GetAllSQSQueueResources(), res: res, visiting: map[string]bool{}}
	for _, id := range sortedKeys(qp.queues) {
		if err := qp.ensure(ctx, id); err != nil {
			return res, err
		}
	}

	buckets := tmpl.GetAllS3BucketResources()
	for _, id := range sortedKeys(buckets) {
		name, err := bucketName(prefix, id)
		if err != nil {
			return res, fmt.Errorf("provision bucket %s: %w", id, err)
		}
		if err := ensureBucket(ctx, c.S3, name); err != nil {
			return res, fmt.Errorf("provision bucket %s (%s): %w", id, name, err)
		}
		res.Buckets[id] = name
	}
	return res, nil
}

// DeleteProvisioned deletes the tables, queues and buckets in res, with the
// objects in the buckets. Resources that are already gone are skipped. It
// tries every resource and returns the errors joined.
func DeleteProvisioned(ctx context.Context, c *Clients, res *Resources) error {
	var errs []error
	for _, id := range sortedKeys(res.Tables) {
		if err := deleteTable(ctx, c.DynamoDB, res.Tables[id]); err != nil {
			errs = append(errs, fmt.Errorf("delete table %s (%s): %w", id, res.Tables[id], err))
		}
	}
	for _, id := range sortedKeys(res.Queues) {
		if err := deleteQueue(ctx, c.SQS, res.Queues[id].URL); err != nil {
			errs = append(errs, fmt.Errorf("delete queue %s (%s): %w", id, res.Queues[id].URL, err))
		}
	}
	for _, id := range sortedKeys(res.Buckets) {
		if err := deleteBucket(ctx, c.S3, res.Buckets[id]); err != nil {
			errs = append(errs, fmt.Errorf("delete bucket %s (%s): %w", id, res.Buckets[id], err))
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
