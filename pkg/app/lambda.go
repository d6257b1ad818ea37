package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/signsecure/signsecure/pkg/httpapi"
	"github.com/signsecure/signsecure/pkg/lambdahttp"
)

// StartRoute is the whole main of a route's Lambda function: it reads the
// configuration, builds the AWS clients once per cold start and serves the
// one route through the API Gateway adapter. A configuration error is
// logged and exits, so the function fails its init phase visibly.
func StartRoute(name string) {
	logger := lambdacontext.NewLogger()
	slog.SetDefault(logger)

	a, err := fromEnvironment(context.Background(), logger)
	if err != nil {
		logger.Error("start function", "route", name, "error", err.Error())
		os.Exit(1)
	}
	rt, ok := a.Route(name)
	if !ok {
		logger.Error("start function: no such route", "route", name)
		os.Exit(1)
	}
	h, err := a.Handler([]httpapi.Route{rt}, lambdahttp.RequestID)
	if err != nil {
		logger.Error("start function", "route", name, "error", err.Error())
		os.Exit(1)
	}
	lambdahttp.Start(h)
}

// fromEnvironment builds the app from environment variables and the AWS
// SDK's default credential chain.
func fromEnvironment(ctx context.Context, logger *slog.Logger) (*App, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return New(cfg, Deps{
		DynamoDB: dynamodb.NewFromConfig(awsCfg),
		S3:       s3.NewFromConfig(awsCfg),
		SQS:      sqs.NewFromConfig(awsCfg),
		Logger:   logger,
	})
}
