package webhooks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/signsecure/signsecure/pkg/apperr"
	"github.com/signsecure/signsecure/pkg/authn"
	"github.com/signsecure/signsecure/pkg/events"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/store"
)

// maxDescriptionRunes bounds an endpoint's description.
const maxDescriptionRunes = 500

// maxRotateAttempts bounds the retries of a rotation that lost a race with
// another rotation of the same endpoint.
const maxRotateAttempts = 3

// CreateInput is the request to create an endpoint.
type CreateInput struct {
	URL         string `json:"url"`
	Description string `json:"description"`
	// Events lists event types of the catalogue, or ["*"] for all of them;
	// omitted means ["*"]. security.* types are never delivered.
	Events []string `json:"events"`
	// Enabled is true when omitted.
	Enabled *bool `json:"enabled"`
}

// UpdateInput holds the fields to change; nil fields stay as they are.
type UpdateInput struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	Events      *[]string `json:"events"`
	// Enabled true clears the disabled reason and the failure streak.
	Enabled *bool `json:"enabled"`
}

// Deliverable reports whether events of the type can go to webhook
// endpoints: every type of the catalogue but the security.* ones.
func Deliverable(eventType string) bool {
	return events.Known(eventType) && !strings.HasPrefix(eventType, "security.")
}

// Create makes an endpoint in the caller's current workspace and returns
// it with its signing secret.
//
// Errors: Forbidden for an organization member who is not an owner or
// admin; Invalid (invalid_url, invalid_events, invalid_description) for a
// bad field; Conflict (too_many_webhooks) when the workspace has
// Config.MaxEndpoints endpoints.
func (s *Service) Create(ctx context.Context, caller *authn.Caller, in CreateInput) (NewEndpoint, error) {
	if err := requireManage(caller, "create webhook endpoints"); err != nil {
		return NewEndpoint{}, err
	}
	workspaceID, err := workspaceOf(caller)
	if err != nil {
		return NewEndpoint{}, err
	}
	rawURL, err := s.checkEndpointURL(ctx, in.URL)
	if err != nil {
		return NewEndpoint{}, err
	}
	description, err := normalizeDescription(in.Description)
	if err != nil {
		return NewEndpoint{}, err
	}
	eventTypes, err := normalizeEvents(in.Events)
	if err != nil {
		return NewEndpoint{}, err
	}

	now := s.now().UTC()
	id := ids.NewAt(ids.Webhook, now)
	key := store.WebhookKey(workspaceID, id)
	it := endpointItem{
		Item:        store.Item{PK: key.PK, SK: key.SK, Entity: entityEndpoint},
		ID:          id,
		WorkspaceID: workspaceID,
		URL:         rawURL,
		Description: description,
		EventTypes:  eventTypes,
		Enabled:     in.Enabled == nil || *in.Enabled,
		Secret:      newSecret(),
		CreatedAt:   store.FormatTime(now),
		CreatedBy:   caller.UserID,
		UpdatedAt:   store.FormatTime(now),
	}
	if !it.Enabled {
		it.DisabledReason, it.DisabledAt = DisabledByUser, store.FormatTime(now)
	}

	put, err := s.store.PutNew(it)
	if err != nil {
		return NewEndpoint{}, fmt.Errorf("create webhook %s: %w", id, err)
	}
	counter := s.store.UpdateIn(store.WebhookCounterKey(workspaceID),
		"SET entity = :entity ADD endpoint_count :one",
		"attribute_not_exists(endpoint_count) OR endpoint_count < :max", nil,
		map[string]types.AttributeValue{
			":entity": &types.AttributeValueMemberS{Value: entityCounter},
			":one":    &types.AttributeValueMemberN{Value: "1"},
			":max":    &types.AttributeValueMemberN{Value: strconv.Itoa(s.cfg.MaxEndpoints)},
		})
	const counterIndex = 1
	err = s.store.Transact(ctx, put, counter)
	if store.FailedAt(err, counterIndex) {
		return NewEndpoint{}, &apperr.Error{Code: apperr.Conflict, Reason: "too_many_webhooks",
			Message: fmt.Sprintf("Workspace %s has %d webhook endpoints, the maximum; delete one before creating another.", workspaceID, s.cfg.MaxEndpoints)}
	}
	if err != nil {
		return NewEndpoint{}, fmt.Errorf("create webhook %s in workspace %s: %w", id, workspaceID, err)
	}
	s.logger.Info("webhook endpoint created", "webhook_id", id, "workspace_id", workspaceID, "user_id", caller.UserID)
	return NewEndpoint{Endpoint: it.endpoint(), Secret: it.Secret}, nil
}

// List returns a page of the current workspace's endpoints, newest first,
// and the cursor of the next page, or "" after the last page.
//
// Errors: an error wrapping store.ErrInvalidCursor for a cursor not made by
// this listing.
func (s *Service) List(ctx context.Context, caller *authn.Caller, limit int, cursor string) ([]Endpoint, string, error) {
	workspaceID, err := workspaceOf(caller)
	if err != nil {
		return nil, "", err
	}
	var items []endpointItem
	next, err := s.store.QueryPage(ctx, store.Query{
		Partition:  store.WorkspacePK(workspaceID),
		SKPrefix:   store.WebhookSKPrefix(),
		Descending: true,
		Limit:      limit,
		Cursor:     cursor,
	}, &items)
	if err != nil {
		return nil, "", fmt.Errorf("list webhooks of workspace %s: %w", workspaceID, err)
	}
	out := make([]Endpoint, 0, len(items))
	for _, it := range items {
		out = append(out, it.endpoint())
	}
	return out, next, nil
}

// Get returns an endpoint of the current workspace.
//
// Errors: NotFound for an id that is not an endpoint of the current
// workspace, malformed ids included.
func (s *Service) Get(ctx context.Context, caller *authn.Caller, id string) (Endpoint, error) {
	it, err := s.find(ctx, caller, id)
	if err != nil {
		return Endpoint{}, err
	}
	return it.endpoint(), nil
}

// Update changes an endpoint's URL, description, events or enabled state.
//
// Errors: as Create, without Conflict; Invalid (empty_update) when no
// field is given; NotFound as for Get.
func (s *Service) Update(ctx context.Context, caller *authn.Caller, id string, in UpdateInput) (Endpoint, error) {
	if err := requireManage(caller, "change webhook endpoints"); err != nil {
		return Endpoint{}, err
	}
	if in.URL == nil && in.Description == nil && in.Events == nil && in.Enabled == nil {
		return Endpoint{}, apperr.New(apperr.Invalid,
			"Give at least one of the fields \"url\", \"description\", \"events\" and \"enabled\".").WithReason("empty_update")
	}
	if _, err := s.find(ctx, caller, id); err != nil {
		return Endpoint{}, err
	}

	now := s.now().UTC()
	sets := []string{"updated_at = :now"}
	var removes []string
	values := map[string]types.AttributeValue{":now": str(store.FormatTime(now))}
	names := map[string]string{}
	if in.URL != nil {
		rawURL, err := s.checkEndpointURL(ctx, *in.URL)
		if err != nil {
			return Endpoint{}, err
		}
		sets = append(sets, "#url = :url")
		names["#url"] = "url"
		values[":url"] = str(rawURL)
	}
	if in.Description != nil {
		description, err := normalizeDescription(*in.Description)
		if err != nil {
			return Endpoint{}, err
		}
		sets = append(sets, "#description = :description")
		names["#description"] = "description"
		values[":description"] = str(description)
	}
	if in.Events != nil {
		eventTypes, err := normalizeEvents(*in.Events)
		if err != nil {
			return Endpoint{}, err
		}
		list, err := attributevalue.Marshal(eventTypes)
		if err != nil {
			return Endpoint{}, fmt.Errorf("update webhook %s: %w", id, err)
		}
		sets = append(sets, "event_types = :events")
		values[":events"] = list
	}
	if in.Enabled != nil {
		values[":enabled"] = &types.AttributeValueMemberBOOL{Value: *in.Enabled}
		sets = append(sets, "#enabled = :enabled")
		names["#enabled"] = "enabled"
		if *in.Enabled {
			// Enabling starts afresh: the failure streak that may have
			// disabled the endpoint no longer counts.
			sets = append(sets, "consecutive_failures = :zero")
			values[":zero"] = &types.AttributeValueMemberN{Value: "0"}
			removes = append(removes, "disabled_reason", "disabled_at", "failing_since")
		} else {
			// An endpoint that is disabled already keeps its reason.
			sets = append(sets, "disabled_reason = if_not_exists(disabled_reason, :by_user)",
				"disabled_at = if_not_exists(disabled_at, :now)")
			values[":by_user"] = str(DisabledByUser)
		}
	}

	update := "SET " + strings.Join(sets, ", ")
	if len(removes) > 0 {
		update += " REMOVE " + strings.Join(removes, ", ")
	}
	workspaceID := caller.WorkspaceID
	newItem, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
		Key:                       store.WebhookKey(workspaceID, id).Attributes(),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_exists(PK)"),
		ExpressionAttributeNames:  nilIfEmpty(names),
		ExpressionAttributeValues: values,
	})
	if errors.Is(err, store.ErrConditionFailed) {
		return Endpoint{}, endpointNotFound(id)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("update webhook %s: %w", id, err)
	}
	var it endpointItem
	if err := attributevalue.UnmarshalMap(newItem, &it); err != nil {
		return Endpoint{}, fmt.Errorf("decode webhook %s: %w", id, err)
	}
	s.logger.Info("webhook endpoint updated", "webhook_id", id, "workspace_id", workspaceID, "user_id", caller.UserID, "enabled", it.Enabled)
	return it.endpoint(), nil
}

// Delete removes an endpoint. Its queued deliveries fail when their turn
// comes, and its delivery log expires with its items.
//
// Errors: Forbidden as for Create; NotFound as for Get.
func (s *Service) Delete(ctx context.Context, caller *authn.Caller, id string) error {
	if err := requireManage(caller, "delete webhook endpoints"); err != nil {
		return err
	}
	if !ids.Valid(ids.Webhook, id) {
		return endpointNotFound(id)
	}
	workspaceID, err := workspaceOf(caller)
	if err != nil {
		return err
	}
	del := s.store.DeleteIf(store.WebhookKey(workspaceID, id), "attribute_exists(PK)", nil)
	counter := s.store.UpdateIn(store.WebhookCounterKey(workspaceID), "ADD endpoint_count :minus_one", "", nil,
		map[string]types.AttributeValue{":minus_one": &types.AttributeValueMemberN{Value: "-1"}})
	err = s.store.Transact(ctx, del, counter)
	if store.FailedAt(err, 0) {
		return endpointNotFound(id)
	}
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	s.logger.Info("webhook endpoint deleted", "webhook_id", id, "workspace_id", workspaceID, "user_id", caller.UserID)
	return nil
}

// Secret returns an endpoint's current signing secret.
//
// Errors: Forbidden for an organization member who is not an owner or
// admin; NotFound as for Get.
func (s *Service) Secret(ctx context.Context, caller *authn.Caller, id string) (Secret, error) {
	if err := requireManage(caller, "read webhook signing secrets"); err != nil {
		return Secret{}, err
	}
	it, err := s.find(ctx, caller, id)
	if err != nil {
		return Secret{}, err
	}
	return it.secret(s.now()), nil
}

func (it endpointItem) secret(now time.Time) Secret {
	out := Secret{Secret: it.Secret}
	if len(it.signingSecrets(now)) > 1 {
		out.PreviousSecretExpiresAt = optionalTime(it.PreviousSecretExpiresAt)
	}
	return out
}

// RotateSecret gives an endpoint a new signing secret and returns it. For
// Config.RotationOverlap, the previous secret signs each delivery too. A
// second rotation within that window drops the oldest secret, so at most
// two secrets sign a delivery.
//
// Errors: Forbidden as for Secret; NotFound as for Get.
func (s *Service) RotateSecret(ctx context.Context, caller *authn.Caller, id string) (Secret, error) {
	if err := requireManage(caller, "rotate webhook signing secrets"); err != nil {
		return Secret{}, err
	}
	for attempt := 1; ; attempt++ {
		it, err := s.find(ctx, caller, id)
		if err != nil {
			return Secret{}, err
		}
		now := s.now().UTC()
		secret := newSecret()
		newItem, err := s.store.Update(ctx, &dynamodb.UpdateItemInput{
			Key: store.WebhookKey(it.WorkspaceID, id).Attributes(),
			UpdateExpression: aws.String("SET previous_secret = secret, previous_secret_expires_at = :expires, " +
				"secret = :secret, secret_version = secret_version + :one, secret_rotated_at = :now, updated_at = :now"),
			ConditionExpression: aws.String("attribute_exists(PK) AND secret_version = :version"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":expires": str(store.FormatTime(now.Add(s.cfg.RotationOverlap))),
				":secret":  str(secret),
				":one":     &types.AttributeValueMemberN{Value: "1"},
				":now":     str(store.FormatTime(now)),
				":version": &types.AttributeValueMemberN{Value: strconv.Itoa(it.SecretVersion)},
			},
		})
		if errors.Is(err, store.ErrConditionFailed) && attempt < maxRotateAttempts {
			// Another rotation won; rotate again on top of it.
			continue
		}
		if errors.Is(err, store.ErrConditionFailed) {
			return Secret{}, &apperr.Error{Code: apperr.Conflict, Reason: "concurrent_rotation",
				Message: fmt.Sprintf("The secret of webhook %s was rotated by other requests meanwhile; try again.", id)}
		}
		if err != nil {
			return Secret{}, fmt.Errorf("rotate secret of webhook %s: %w", id, err)
		}
		var rotated endpointItem
		if err := attributevalue.UnmarshalMap(newItem, &rotated); err != nil {
			return Secret{}, fmt.Errorf("decode webhook %s: %w", id, err)
		}
		s.logger.Info("webhook signing secret rotated", "webhook_id", id, "workspace_id", it.WorkspaceID, "user_id", caller.UserID)
		return rotated.secret(now), nil
	}
}

// find returns an endpoint of the caller's workspace. The key contains the
// workspace, so an endpoint of another workspace is never found.
func (s *Service) find(ctx context.Context, caller *authn.Caller, id string) (endpointItem, error) {
	workspaceID, err := workspaceOf(caller)
	if err != nil {
		return endpointItem{}, err
	}
	return s.endpoint(ctx, workspaceID, id)
}

// endpoint reads an endpoint of the workspace. It returns a NotFound
// *apperr.Error when the workspace has no endpoint with the id.
func (s *Service) endpoint(ctx context.Context, workspaceID, id string) (endpointItem, error) {
	if !ids.Valid(ids.Webhook, id) {
		return endpointItem{}, endpointNotFound(id)
	}
	var it endpointItem
	err := s.store.Get(ctx, store.WebhookKey(workspaceID, id), &it)
	if errors.Is(err, store.ErrNotFound) {
		return endpointItem{}, endpointNotFound(id)
	}
	if err != nil {
		return endpointItem{}, fmt.Errorf("get webhook %s: %w", id, err)
	}
	return it, nil
}

// checkEndpointURL checks a URL against the address policy, with DNS
// lookups, and returns it without surrounding spaces.
func (s *Service) checkEndpointURL(ctx context.Context, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", apperr.InvalidField("url", "invalid_url", "Field \"url\" is required, such as https://example.com/webhooks.")
	}
	if _, err := s.policy.CheckURL(ctx, raw); err != nil {
		var addrErr *AddressError
		if errors.As(err, &addrErr) {
			return "", apperr.InvalidField("url", "invalid_url", "Field \"url\"=%q is not allowed: %s.", truncate(raw, 200), addrErr.Reason)
		}
		return "", fmt.Errorf("check webhook URL: %w", err)
	}
	return raw, nil
}

func normalizeDescription(raw string) (string, error) {
	description := strings.TrimSpace(raw)
	switch {
	case !utf8.ValidString(description):
		return "", apperr.InvalidField("description", "invalid_description", "Field \"description\" must be valid UTF-8.")
	case utf8.RuneCountInString(description) > maxDescriptionRunes:
		return "", apperr.InvalidField("description", "invalid_description",
			"Field \"description\" has %d characters; the maximum is %d.", utf8.RuneCountInString(description), maxDescriptionRunes)
	case strings.IndexFunc(description, unicode.IsControl) >= 0:
		return "", apperr.InvalidField("description", "invalid_description", "Field \"description\" contains control characters.")
	}
	return description, nil
}

// normalizeEvents returns the subscribed types in catalogue order without
// repeats, or ["*"]. nil means ["*"].
func normalizeEvents(in []string) ([]string, error) {
	if in == nil {
		return []string{AllEvents}, nil
	}
	if len(in) == 0 {
		return nil, apperr.InvalidField("events", "invalid_events",
			"Field \"events\" is empty; list event types such as \"envelope.completed\", or give [\"*\"] for all.")
	}
	if slices.Contains(in, AllEvents) {
		if len(in) > 1 {
			return nil, apperr.InvalidField("events", "invalid_events",
				"Field \"events\" contains \"*\" and other types; give [\"*\"] alone for all types, or list the types.")
		}
		return []string{AllEvents}, nil
	}
	for _, t := range in {
		if strings.HasPrefix(t, "security.") && events.Known(t) {
			return nil, apperr.InvalidField("events", "invalid_events",
				"Field \"events\" contains %q; security events are never sent to webhooks.", t)
		}
		if !Deliverable(t) {
			return nil, apperr.InvalidField("events", "invalid_events",
				"Field \"events\" contains %q, which is not an event type; use \"*\" or types from %v.", truncate(t, 64), deliverableTypes())
		}
	}
	var out []string
	for _, t := range events.Types {
		if slices.Contains(in, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// deliverableTypes returns the catalogue types that endpoints may
// subscribe to.
func deliverableTypes() []string {
	var out []string
	for _, t := range events.Types {
		if Deliverable(t) {
			out = append(out, t)
		}
	}
	return out
}

func endpointNotFound(id string) error {
	return &apperr.Error{Code: apperr.NotFound, Reason: "webhook_not_found",
		Message: fmt.Sprintf("Webhook endpoint %q was not found in this workspace.", truncate(id, 64))}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// truncate returns s cut to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
