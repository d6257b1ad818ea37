package localstack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// bucketName returns the lowercased prefix and logical id, checked against
// S3's length limit of 3 to 63 characters.
func bucketName(prefix, logicalID string) (string, error) {
	name := strings.ToLower(prefix + logicalID)
	if len(name) < 3 || len(name) > 63 {
		return "", fmt.Errorf("bucket name %q has %d characters, want 3 to 63", name, len(name))
	}
	return name, nil
}

// ensureBucket creates the bucket unless it exists.
func ensureBucket(ctx context.Context, client *s3.Client, name string) error {
	_, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)})
	var notFound *types.NotFound
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
	default:
		return fmt.Errorf("head bucket: %w", err)
	}

	_, err = client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket: %w", err)
	}
	return nil
}

// deleteBucket deletes every object in the bucket and then the bucket. It
// does not handle object versions, because the template's buckets are not
// versioned.
func deleteBucket(ctx context.Context, client *s3.Client, name string) error {
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		var noBucket *types.NoSuchBucket
		if errors.As(err, &noBucket) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list objects: %w", err)
		}
		for _, obj := range page.Contents {
			_, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(name), Key: obj.Key})
			if err != nil {
				return fmt.Errorf("delete object %s: %w", aws.ToString(obj.Key), err)
			}
		}
	}

	_, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	var noBucket *types.NoSuchBucket
	if err != nil && !errors.As(err, &noBucket) {
		return fmt.Errorf("delete bucket: %w", err)
	}
	return nil
}
