package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/store"
	"github.com/signsecure/signsecure/pkg/token"
)

// reserveLoginAttempt counts a login attempt against the failure limits of
// the email address and of the client address in the current fixed window,
// before the password is checked, so parallel attempts cannot overshoot a
// limit. The returned release takes the attempt back after a successful
// login, so only failures stay counted.
//
// Errors: RateLimited, with RetryAfter set to the end of the window.
func (s *Service) reserveLoginAttempt(ctx context.Context, email, ip string, now time.Time) (func(context.Context), error) {
	windowStart := now.Truncate(s.cfg.LoginWindow)
	windowEnd := windowStart.Add(s.cfg.LoginWindow)
	limited := &apperr.Error{Code: apperr.RateLimited, Reason: "too_many_login_attempts", RetryAfter: windowEnd.Sub(now),
		Message: fmt.Sprintf("Too many failed logins; try again after %s.", windowEnd.Format(time.RFC3339))}

	var reserved []store.Key
	release := func(ctx context.Context) {
		for _, k := range reserved {
			if err := s.addThrottleCount(ctx, k, -1, 0, windowEnd); err != nil {
				httpapi.Logger(ctx).Warn("release login attempt", "error", err.Error())
			}
		}
	}

	subjects := []struct {
		scope, subject string
		limit          int
	}{
		{"account", strings.ToLower(email), s.cfg.MaxFailuresPerAccount},
		{"client", ip, s.cfg.MaxFailuresPerClient},
	}
	for _, sub := range subjects {
		if sub.subject == "" {
			continue
		}
		key := store.ThrottleKey(sub.scope, token.Hash(sub.subject), windowStart.Unix())
		err := s.addThrottleCount(ctx, key, 1, sub.limit, windowEnd)
		if errors.Is(err, store.ErrConditionFailed) {
			release(ctx)
			return nil, limited
		}
		if err != nil {
			release(ctx)
			return nil, fmt.Errorf("count login attempt: %w", err)
		}
		reserved = append(reserved, key)
	}
	return release, nil
}

// addThrottleCount adds delta to a window's counter. A positive limit makes
// the update conditional on the counter being below limit.
func (s *Service) addThrottleCount(ctx context.Context, key store.Key, delta, limit int, windowEnd time.Time) error {
	in := &dynamodb.UpdateItemInput{
		Key:              key.Attributes(),
		UpdateExpression: new("ADD attempts :delta SET entity = :entity, expires_at = :expires"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":delta":   &types.AttributeValueMemberN{Value: strconv.Itoa(delta)},
			":entity":  &types.AttributeValueMemberS{Value: entityThrottle},
			":expires": &types.AttributeValueMemberN{Value: strconv.FormatInt(windowEnd.Add(time.Hour).Unix(), 10)},
		},
		ReturnValues: types.ReturnValueNone,
	}
	if limit > 0 {
		in.ConditionExpression = new("attribute_not_exists(attempts) OR attempts < :max")
		in.ExpressionAttributeValues[":max"] = &types.AttributeValueMemberN{Value: strconv.Itoa(limit)}
	}
	_, err := s.store.Update(ctx, in)
	return err
}

// newDeviceItem returns the device record of a client: its user agent and
// network (the /24 of an IPv4 address, the /48 of an IPv6 address).
func newDeviceItem(userID string, client Client, now time.Time) deviceItem {
	network := clientNetwork(client.IP)
	key := store.DeviceKey(userID, token.Hash(client.UserAgent+"\x00"+network))
	return deviceItem{
		Item:        itemAt(key, entityDevice),
		UserAgent:   truncate(client.UserAgent, maxUserAgentLength),
		Network:     network,
		FirstSeenAt: store.FormatTime(now),
	}
}

func clientNetwork(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	prefix, err := addr.Prefix(bits)
	if err != nil {
		return ip
	}
	return prefix.String()
}
