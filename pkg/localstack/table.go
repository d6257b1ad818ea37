package localstack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	cfndynamodb "github.com/awslabs/goformation/v7/cloudformation/dynamodb"
)

// ensureTable creates the table unless it exists, then enables the TTL
// that the template specifies.
func ensureTable(ctx context.Context, client *dynamodb.Client, name string, spec *cfndynamodb.Table) error {
	_, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	var notFound *types.ResourceNotFoundException
	switch {
	case err == nil:
		// Kept as it is.
	case errors.As(err, &notFound):
		if err := createTable(ctx, client, name, spec); err != nil {
			return err
		}
	default:
		return fmt.Errorf("describe table: %w", err)
	}

	return ensureTTL(ctx, client, name, spec.TimeToLiveSpecification)
}

func createTable(ctx context.Context, client *dynamodb.Client, name string, spec *cfndynamodb.Table) error {
	input := &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: attributeDefinitions(spec.AttributeDefinitions),
		KeySchema:            keySchema(spec.KeySchema),
		BillingMode:          types.BillingModeProvisioned,
	}
	if spec.BillingMode != nil {
		input.BillingMode = types.BillingMode(*spec.BillingMode)
	}
	if input.BillingMode == types.BillingModeProvisioned {
		input.ProvisionedThroughput = throughput(spec.ProvisionedThroughput)
	}

	for _, gsi := range spec.GlobalSecondaryIndexes {
		index := types.GlobalSecondaryIndex{
			IndexName:  aws.String(gsi.IndexName),
			KeySchema:  keySchema(gsi.KeySchema),
			Projection: projection(gsi.Projection),
		}
		if input.BillingMode == types.BillingModeProvisioned {
			index.ProvisionedThroughput = throughput(gsi.ProvisionedThroughput)
		}
		input.GlobalSecondaryIndexes = append(input.GlobalSecondaryIndexes, index)
	}
	for _, lsi := range spec.LocalSecondaryIndexes {
		input.LocalSecondaryIndexes = append(input.LocalSecondaryIndexes, types.LocalSecondaryIndex{
			IndexName:  aws.String(lsi.IndexName),
			KeySchema:  keySchema(lsi.KeySchema),
			Projection: projection(lsi.Projection),
		})
	}

	if spec.StreamSpecification != nil {
		input.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(spec.StreamSpecification.StreamViewType),
		}
	}

	_, err := client.CreateTable(ctx, input)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table: %w", err)
	}

	waiter := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		return fmt.Errorf("wait for table: %w", err)
	}
	return nil
}

// ensureTTL enables TTL on the attribute that spec names, unless it is
// enabled already. A nil or disabled spec changes nothing.
func ensureTTL(ctx context.Context, client *dynamodb.Client, name string, spec *cfndynamodb.Table_TimeToLiveSpecification) error {
	if spec == nil || !spec.Enabled || spec.AttributeName == nil {
		return nil
	}

	out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL: %w", err)
	}
	if d := out.TimeToLiveDescription; d != nil &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) &&
		aws.ToString(d.AttributeName) == *spec.AttributeName {
		return nil
	}

	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: spec.AttributeName,
			Enabled:       aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on %s: %w", *spec.AttributeName, err)
	}
	return nil
}

func deleteTable(ctx context.Context, client *dynamodb.Client, name string) error {
	_, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	var notFound *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &notFound) {
		return err
	}
	return nil
}

func attributeDefinitions(specs []cfndynamodb.Table_AttributeDefinition) []types.AttributeDefinition {
	defs := make([]types.AttributeDefinition, 0, len(specs))
	for _, s := range specs {
		defs = append(defs, types.AttributeDefinition{
			AttributeName: aws.String(s.AttributeName),
			AttributeType: types.ScalarAttributeType(s.AttributeType),
		})
	}
	return defs
}

func keySchema(specs []cfndynamodb.Table_KeySchema) []types.KeySchemaElement {
	keys := make([]types.KeySchemaElement, 0, len(specs))
	for _, s := range specs {
		keys = append(keys, types.KeySchemaElement{
			AttributeName: aws.String(s.AttributeName),
			KeyType:       types.KeyType(s.KeyType),
		})
	}
	return keys
}

// projection converts an index projection. Without a ProjectionType,
// DynamoDB projects only the keys.
func projection(spec *cfndynamodb.Table_Projection) *types.Projection {
	p := &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}
	if spec == nil {
		return p
	}
	p.NonKeyAttributes = spec.NonKeyAttributes
	if spec.ProjectionType != nil {
		p.ProjectionType = types.ProjectionType(*spec.ProjectionType)
	}
	return p
}

// throughput converts a template's provisioned throughput. DynamoDB Local
// requires one for provisioned tables, so a missing spec becomes 1/1.
func throughput(spec *cfndynamodb.Table_ProvisionedThroughput) *types.ProvisionedThroughput {
	if spec == nil {
		return &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(1), WriteCapacityUnits: aws.Int64(1)}
	}
	return &types.ProvisionedThroughput{
		ReadCapacityUnits:  aws.Int64(int64(spec.ReadCapacityUnits)),
		WriteCapacityUnits: aws.Int64(int64(spec.WriteCapacityUnits)),
	}
}
