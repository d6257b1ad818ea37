package orgs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/store"
)

// roleIs returns a condition that a membership exists and has one of the
// roles, with its names and values.
func roleIs(roles ...string) (string, map[string]string, map[string]types.AttributeValue) {
	values := map[string]types.AttributeValue{}
	placeholders := make([]string, len(roles))
	for i, r := range roles {
		p := fmt.Sprintf(":role%d", i)
		placeholders[i] = p
		values[p] = str(r)
	}
	return "#role IN (" + strings.Join(placeholders, ", ") + ")", map[string]string{"#role": "role"}, values
}

// checkRoleIn returns a transaction item that holds only while the user's
// membership has one of the roles, so a caller demoted or removed in the
// meantime cannot complete an action their old role allowed.
func (s *Service) checkRoleIn(orgID, userID string, roles ...string) types.TransactWriteItem {
	cond, names, values := roleIs(roles...)
	return s.store.ConditionCheck(store.MemberKey(orgID, userID), cond, names, values)
}

// addOwners returns a transaction item that adds delta to the
// organization's owner count. A negative delta holds only while more than
// -delta owners remain.
func (s *Service) addOwners(orgID string, delta int64, now time.Time) types.TransactWriteItem {
	cond := "attribute_exists(PK)"
	values := map[string]types.AttributeValue{":delta": num(delta), ":now": str(store.FormatTime(now))}
	if delta < 0 {
		cond = "owner_count > :min"
		values[":min"] = num(-delta)
	}
	return s.store.UpdateIn(store.OrgKey(orgID), "SET owner_count = owner_count + :delta, updated_at = :now", cond, nil, values)
}

// orgExists returns a transaction item that holds while the organization
// exists.
func (s *Service) orgExists(orgID string) types.TransactWriteItem {
	return s.store.ConditionCheck(store.OrgKey(orgID), "attribute_exists(PK)", nil, nil)
}

// putEvent returns the transaction item that writes an event of the
// organization to the outbox.
func (s *Service) putEvent(typ, orgID string, data any, now time.Time) (types.TransactWriteItem, error) {
	e, err := events.New(typ, orgID, data, now)
	if err != nil {
		return types.TransactWriteItem{}, err
	}
	return events.Put(s.store, e)
}

// maxBatchGetKeys is BatchGetItem's limit on keys per request.
const maxBatchGetKeys = 100

// maxBatchGetAttempts bounds the retries of keys that BatchGetItem left
// unprocessed under throttling.
const maxBatchGetAttempts = 5

// batchGet reads the items at keys with consistent reads and decodes each
// into a T. The result maps a key to its item; missing items are absent.
func batchGet[T any](ctx context.Context, st *store.Store, keys []store.Key) (map[store.Key]T, error) {
	out := make(map[store.Key]T, len(keys))
	seen := make(map[store.Key]bool, len(keys))
	var unique []map[string]types.AttributeValue
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			unique = append(unique, k.Attributes())
		}
	}

	for start := 0; start < len(unique); start += maxBatchGetKeys {
		pending := unique[start:min(start+maxBatchGetKeys, len(unique))]
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > maxBatchGetAttempts {
				return nil, fmt.Errorf("batch get %d items: %d keys still unprocessed after %d attempts", len(keys), len(pending), maxBatchGetAttempts)
			}
			if attempt > 1 {
				if err := sleep(ctx, time.Duration(attempt*attempt)*10*time.Millisecond); err != nil {
					return nil, fmt.Errorf("batch get %d items: %w", len(keys), err)
				}
			}

			res, err := st.DB().BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
				st.Table(): {Keys: pending, ConsistentRead: new(true)},
			}})
			if err != nil {
				return nil, fmt.Errorf("batch get %d items: %w", len(keys), err)
			}
			for _, raw := range res.Responses[st.Table()] {
				var key struct {
					PK string `dynamodbav:"PK"`
					SK string `dynamodbav:"SK"`
				}
				var v T
				if err := attributevalue.UnmarshalMap(raw, &key); err != nil {
					return nil, fmt.Errorf("decode batch get item: %w", err)
				}
				if err := attributevalue.UnmarshalMap(raw, &v); err != nil {
					return nil, fmt.Errorf("decode %s/%s: %w", key.PK, key.SK, err)
				}
				out[store.Key{PK: key.PK, SK: key.SK}] = v
			}
			pending = res.UnprocessedKeys[st.Table()].Keys
		}
	}
	return out, nil
}

// orgNames returns the names of the organizations, by id.
func (s *Service) orgNames(ctx context.Context, orgIDs []string) (map[string]string, error) {
	keys := make([]store.Key, len(orgIDs))
	for i, id := range orgIDs {
		keys[i] = store.OrgKey(id)
	}
	found, err := batchGet[orgItem](ctx, s.store, keys)
	if err != nil {
		return nil, fmt.Errorf("read organization names: %w", err)
	}
	names := make(map[string]string, len(found))
	for _, o := range found {
		names[o.ID] = o.Name
	}
	return names, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
