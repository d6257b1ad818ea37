package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Index names.
const (
	GSI1 = "GSI1"
	GSI2 = "GSI2"
)

// Query selects items of one partition of the table or of an index.
type Query struct {
	// Index is "" for the table, or GSI1 or GSI2.
	Index string
	// Partition is the partition key value.
	Partition string
	// SKPrefix, if set, keeps items whose sort key begins with it.
	SKPrefix string
	// Descending lists items in descending sort key order.
	Descending bool
	// Filter, if set, is a filter expression applied after the key
	// condition, with FilterNames and FilterValues. Placeholders must not
	// start with ":pk", ":sk", "#pk" or "#sk".
	Filter       string
	FilterNames  map[string]string
	FilterValues map[string]types.AttributeValue
	// Limit is the page size; it must be positive.
	Limit int
	// Cursor resumes a listing where a previous page ended.
	Cursor string
}

// QueryPage runs q and decodes up to q.Limit items into out, a pointer to a
// slice. It returns a cursor for the next page, or "" after the last page.
// A cursor from another partition or index returns ErrInvalidCursor.
func (s *Store) QueryPage(ctx context.Context, q Query, out any) (string, error) {
	pkName, skName := "PK", "SK"
	if q.Index != "" {
		pkName, skName = q.Index+"PK", q.Index+"SK"
	}

	names := map[string]string{"#pk": pkName}
	values := map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: q.Partition}}
	condition := "#pk = :pk"
	if q.SKPrefix != "" {
		names["#sk"] = skName
		values[":sk"] = &types.AttributeValueMemberS{Value: q.SKPrefix}
		condition += " AND begins_with(#sk, :sk)"
	}
	for k, v := range q.FilterNames {
		names[k] = v
	}
	for k, v := range q.FilterValues {
		values[k] = v
	}

	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    &condition,
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ScanIndexForward:          new(!q.Descending),
	}
	if q.Index != "" {
		in.IndexName = &q.Index
	} else {
		in.ConsistentRead = new(true)
	}
	if q.Filter != "" {
		in.FilterExpression = &q.Filter
	}
	if q.Cursor != "" {
		start, err := s.cursors.open(q.Cursor, q.Index, q.Partition, q.SKPrefix)
		if err != nil {
			return "", err
		}
		in.ExclusiveStartKey = start
	}

	// A filter drops items after DynamoDB counts them against Limit, so
	// keep reading until the page is full or the partition ends.
	var items []map[string]types.AttributeValue
	for {
		in.Limit = new(int32(q.Limit - len(items)))
		res, err := s.db.Query(ctx, in)
		if err != nil {
			return "", fmt.Errorf("query %s %s: %w", q.Index, q.Partition, err)
		}
		items = append(items, res.Items...)
		in.ExclusiveStartKey = res.LastEvaluatedKey
		if len(res.LastEvaluatedKey) == 0 || len(items) >= q.Limit {
			break
		}
	}

	if err := attributevalue.UnmarshalListOfMaps(items, out); err != nil {
		return "", fmt.Errorf("decode query %s %s: %w", q.Index, q.Partition, err)
	}
	if len(in.ExclusiveStartKey) == 0 {
		return "", nil
	}
	return s.cursors.seal(q.Index, q.Partition, q.SKPrefix, in.ExclusiveStartKey)
}
