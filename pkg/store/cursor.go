package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrInvalidCursor is returned for a pagination cursor that was not made
// by this store for the same query: edited, truncated, signed with another
// key, or made for another partition or index.
var ErrInvalidCursor = errors.New("invalid cursor")

// cursorMACSize is the length of the truncated HMAC-SHA256 tag; 128 bits
// leave no practical room for forgery.
const cursorMACSize = 16

// cursorSealer signs the LastEvaluatedKey of a query together with the
// query's index and partition, so a client can resume a listing but cannot
// edit the cursor to read another partition.
type cursorSealer struct {
	key []byte
}

type cursorPayload struct {
	Index     string            `json:"i"`
	Partition string            `json:"p"`
	Prefix    string            `json:"s,omitempty"`
	Key       map[string]string `json:"k"`
}

// seal binds the cursor to the index, partition and sort key prefix of the
// listing, because a start key from another listing of the same partition
// is rejected by DynamoDB with a validation error.
func (c cursorSealer) seal(index, partition, prefix string, last map[string]types.AttributeValue) (string, error) {
	p := cursorPayload{Index: index, Partition: partition, Prefix: prefix, Key: map[string]string{}}
	for name, v := range last {
		s, ok := v.(*types.AttributeValueMemberS)
		if !ok {
			return "", fmt.Errorf("seal cursor: key attribute %s is not a string", name)
		}
		p.Key[name] = s.Value
	}
	body, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("seal cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(append(body, c.mac(body)...)), nil
}

func (c cursorSealer) open(cursor, index, partition, prefix string) (map[string]types.AttributeValue, error) {
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) <= cursorMACSize {
		return nil, ErrInvalidCursor
	}
	body, tag := raw[:len(raw)-cursorMACSize], raw[len(raw)-cursorMACSize:]
	if !hmac.Equal(tag, c.mac(body)) {
		return nil, ErrInvalidCursor
	}

	var p cursorPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, ErrInvalidCursor
	}
	if p.Index != index || p.Partition != partition || p.Prefix != prefix || len(p.Key) == 0 {
		return nil, ErrInvalidCursor
	}

	key := make(map[string]types.AttributeValue, len(p.Key))
	for name, v := range p.Key {
		key[name] = &types.AttributeValueMemberS{Value: v}
	}
	return key, nil
}

func (c cursorSealer) mac(body []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("signsecure cursor v1\x00"))
	m.Write(body)
	return m.Sum(nil)[:cursorMACSize]
}
