// Package localrun replaces the Lambda event source mappings when
// SignSecure runs on one machine. StreamPoller reads the table's DynamoDB
// stream and calls a stream handler as the DynamoDB event source mapping
// does. QueuePoller receives from an SQS queue and calls a queue handler
// as the SQS event source mapping does. Both call the same handler
// functions that the Lambda functions run, with the same event types, and
// both honour ReportBatchItemFailures.
package localrun
