package localstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Region is the AWS region that the local clients sign requests for.
// fauxqs puts it into queue ARNs.
const Region = "us-east-1"

// Default ports of the emulators.
const (
	DefaultDynamoDBPort = 8000
	DefaultAWSPort      = 4566 // fauxqs: SQS and S3
	DefaultSESPort      = 8005
)

// Environment variables that override the default endpoints.
const (
	EnvDynamoDBEndpoint = "SIGNSECURE_DYNAMODB_ENDPOINT"
	EnvAWSEndpoint      = "SIGNSECURE_AWS_ENDPOINT" // SQS and S3
	EnvSESEndpoint      = "SIGNSECURE_SES_ENDPOINT"
)

// Endpoints holds the base URLs of the local services, such as
// "http://127.0.0.1:8000".
type Endpoints struct {
	DynamoDB string // DynamoDB and DynamoDB Streams
	SQS      string
	S3       string
	SES      string
}

// DefaultEndpoints returns the endpoints of emulators on their default ports.
func DefaultEndpoints() Endpoints {
	return Endpoints{
		DynamoDB: localURL(DefaultDynamoDBPort),
		SQS:      localURL(DefaultAWSPort),
		S3:       localURL(DefaultAWSPort),
		SES:      localURL(DefaultSESPort),
	}
}

// EndpointsFromEnv returns [DefaultEndpoints] with each endpoint replaced by
// its environment variable ([EnvDynamoDBEndpoint], [EnvAWSEndpoint],
// [EnvSESEndpoint]) where that is set. [EnvAWSEndpoint] sets both SQS and S3.
func EndpointsFromEnv() Endpoints {
	e := DefaultEndpoints()
	if v := os.Getenv(EnvDynamoDBEndpoint); v != "" {
		e.DynamoDB = v
	}
	if v := os.Getenv(EnvAWSEndpoint); v != "" {
		e.SQS = v
		e.S3 = v
	}
	if v := os.Getenv(EnvSESEndpoint); v != "" {
		e.SES = v
	}
	return e
}

// Ping sends an HTTP request to every endpoint. It returns an error that
// names each endpoint that does not respond.
func (e Endpoints) Ping(ctx context.Context) error {
	var errs []error
	for _, endpoint := range []struct{ name, url string }{
		{"DynamoDB", e.DynamoDB},
		{"SQS", e.SQS},
		{"S3", e.S3},
		{"SES", e.SES},
	} {
		if err := ping(ctx, endpoint.url); err != nil {
			errs = append(errs, fmt.Errorf("%s endpoint %s: %w", endpoint.name, endpoint.url, err))
		}
	}
	return errors.Join(errs...)
}

// ping returns nil when an HTTP server responds at url. Any response counts,
// whatever its status, because the emulators reply to a bare GET with an
// error status.
func ping(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Clients holds AWS SDK clients bound to local endpoints.
type Clients struct {
	DynamoDB        *dynamodb.Client
	DynamoDBStreams *dynamodbstreams.Client
	SQS             *sqs.Client
	S3              *s3.Client
	SES             *sesv2.Client
}

// NewClients builds clients for the given endpoints. They sign requests
// for [Region] with fixed dummy credentials and ignore the AWS_* environment
// variables and shared config files, so a developer's real AWS settings
// never reach the emulators. The S3 client uses path-style addressing,
// because a virtual-hosted name such as bucket.127.0.0.1 does not resolve.
func NewClients(endpoints Endpoints) *Clients {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	return &Clients{
		DynamoDB: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(endpoints.DynamoDB)
		}),
		DynamoDBStreams: dynamodbstreams.NewFromConfig(cfg, func(o *dynamodbstreams.Options) {
			o.BaseEndpoint = aws.String(endpoints.DynamoDB)
		}),
		SQS: sqs.NewFromConfig(cfg, func(o *sqs.Options) {
			o.BaseEndpoint = aws.String(endpoints.SQS)
		}),
		S3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(endpoints.S3)
			o.UsePathStyle = true
		}),
		SES: sesv2.NewFromConfig(cfg, func(o *sesv2.Options) {
			o.BaseEndpoint = aws.String(endpoints.SES)
		}),
	}
}

func localURL(port int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}
