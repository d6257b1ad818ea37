package localstack

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	cfndynamodb "github.com/awslabs/goformation/v7/cloudformation/dynamodb"
	"gopkg.in/yaml.v3"
)

// openRepoTemplatePath returns the path of the module's template.yaml.
func openRepoTemplatePath(t *testing.T) string {
	t.Helper()
	root, err := FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, TemplateFile)
}

func TestOpenTemplateGlobals(t *testing.T) {
	tmpl, err := OpenTemplate(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}

	if tmpl.Transform == nil || tmpl.Transform.String == nil || *tmpl.Transform.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("Transform = %+v, want AWS::Serverless-2016-10-31", tmpl.Transform)
	}
	fn, err := tmpl.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatal(err)
	}
	if got := deref(fn.Runtime); got != "provided.al2023" {
		t.Errorf("Globals.Function.Runtime = %q, want provided.al2023", got)
	}
	if fn.Architectures == nil || strings.Join(*fn.Architectures, ",") != "arm64" {
		t.Errorf("Globals.Function.Architectures = %v, want [arm64]", fn.Architectures)
	}
	if got := deref(fn.Handler); got != "bootstrap" {
		t.Errorf("Globals.Function.Handler = %q, want bootstrap", got)
	}
	if fn.Timeout == nil || *fn.Timeout != 30 {
		t.Errorf("Globals.Function.Timeout = %v, want 30", fn.Timeout)
	}
	if fn.MemorySize == nil || *fn.MemorySize <= 0 {
		t.Errorf("Globals.Function.MemorySize = %v, want a positive size", fn.MemorySize)
	}
	if fn.Environment == nil {
		t.Fatal("Globals.Function.Environment is missing")
	}
	for _, name := range []string{"STAGE", "TABLE_NAME", "DOCUMENTS_BUCKET_NAME", "WEBHOOK_DELIVERIES_QUEUE_URL", "EMAILS_QUEUE_URL"} {
		if _, ok := fn.Environment.Variables[name]; !ok {
			t.Errorf("Globals.Function.Environment.Variables has no %s", name)
		}
	}
}

// goformation v7.14.9 does not model LoggingConfig, so the raw YAML is
// checked.
func TestTemplateLogFormatJSON(t *testing.T) {
	data, err := os.ReadFile(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Globals struct {
			Function struct {
				LoggingConfig struct {
					LogFormat string `yaml:"LogFormat"`
				} `yaml:"LoggingConfig"`
			} `yaml:"Function"`
		} `yaml:"Globals"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Globals.Function.LoggingConfig.LogFormat; got != "JSON" {
		t.Errorf("Globals.Function.LoggingConfig.LogFormat = %q, want JSON", got)
	}
}

func TestTemplateRouteFunctionMarkers(t *testing.T) {
	data, err := os.ReadFile(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	resources := strings.Index(text, "\nResources:\n")
	begin := strings.Index(text, "# BEGIN ROUTE FUNCTIONS")
	end := strings.Index(text, "# END ROUTE FUNCTIONS")
	if resources < 0 || begin < 0 || end < 0 {
		t.Fatalf("Resources at %d, BEGIN marker at %d, END marker at %d: want all three", resources, begin, end)
	}
	if !(resources < begin && begin < end) {
		t.Errorf("want Resources (%d) < BEGIN ROUTE FUNCTIONS (%d) < END ROUTE FUNCTIONS (%d)", resources, begin, end)
	}
}

func TestOpenTemplateResourceTypes(t *testing.T) {
	tmpl, err := OpenTemplate(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		logicalID string
		wantType  string
	}{
		{"HttpApi", "AWS::Serverless::HttpApi"},
		{"Table", "AWS::DynamoDB::Table"},
		{"WebhookDeliveriesQueue", "AWS::SQS::Queue"},
		{"WebhookDeliveriesDeadLetterQueue", "AWS::SQS::Queue"},
		{"EmailsQueue", "AWS::SQS::Queue"},
		{"EmailsDeadLetterQueue", "AWS::SQS::Queue"},
		{"DocumentsBucket", "AWS::S3::Bucket"},
	}
	for _, tt := range tests {
		r, ok := tmpl.Resources[tt.logicalID]
		if !ok {
			t.Errorf("resource %s is missing", tt.logicalID)
			continue
		}
		if got := r.AWSCloudFormationType(); got != tt.wantType {
			t.Errorf("resource %s has type %s, want %s", tt.logicalID, got, tt.wantType)
		}
	}
	if _, ok := tmpl.Outputs["ApiURL"]; !ok {
		t.Error("output ApiURL is missing")
	}
}

func TestOpenTemplateTable(t *testing.T) {
	tmpl, err := OpenTemplate(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	table, err := tmpl.GetDynamoDBTableWithName("Table")
	if err != nil {
		t.Fatal(err)
	}

	if got := deref(table.BillingMode); got != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode = %q, want PAY_PER_REQUEST", got)
	}
	if p := table.PointInTimeRecoverySpecification; p == nil || p.PointInTimeRecoveryEnabled == nil || !*p.PointInTimeRecoveryEnabled {
		t.Errorf("PointInTimeRecoverySpecification = %+v, want enabled", p)
	}
	if s := table.StreamSpecification; s == nil || s.StreamViewType != "NEW_IMAGE" {
		t.Errorf("StreamSpecification = %+v, want NEW_IMAGE", s)
	}
	if ttl := table.TimeToLiveSpecification; ttl == nil || !ttl.Enabled || deref(ttl.AttributeName) != "expires_at" {
		t.Errorf("TimeToLiveSpecification = %+v, want enabled on expires_at", ttl)
	}
	if got := keyNames(table.KeySchema); got != "PK HASH, SK RANGE" {
		t.Errorf("KeySchema = %s, want PK HASH, SK RANGE", got)
	}
	for _, def := range table.AttributeDefinitions {
		if def.AttributeType != "S" {
			t.Errorf("attribute %s has type %s, want S", def.AttributeName, def.AttributeType)
		}
	}

	wantIndexes := map[string]string{
		"GSI1": "GSI1PK HASH, GSI1SK RANGE",
		"GSI2": "GSI2PK HASH, GSI2SK RANGE",
	}
	if len(table.GlobalSecondaryIndexes) != len(wantIndexes) {
		t.Errorf("%d global secondary indexes, want %d", len(table.GlobalSecondaryIndexes), len(wantIndexes))
	}
	for _, gsi := range table.GlobalSecondaryIndexes {
		want, ok := wantIndexes[gsi.IndexName]
		if !ok {
			t.Errorf("unexpected index %s", gsi.IndexName)
			continue
		}
		if got := keyNames(gsi.KeySchema); got != want {
			t.Errorf("index %s keys = %s, want %s", gsi.IndexName, got, want)
		}
		if gsi.Projection == nil || deref(gsi.Projection.ProjectionType) != "ALL" {
			t.Errorf("index %s projection = %+v, want ALL", gsi.IndexName, gsi.Projection)
		}
	}
}

func TestOpenTemplateQueues(t *testing.T) {
	tmpl, err := OpenTemplate(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		queue, deadLetterQueue string
	}{
		{"WebhookDeliveriesQueue", "WebhookDeliveriesDeadLetterQueue"},
		{"EmailsQueue", "EmailsDeadLetterQueue"},
	}
	for _, tt := range tests {
		t.Run(tt.queue, func(t *testing.T) {
			q, err := tmpl.GetSQSQueueWithName(tt.queue)
			if err != nil {
				t.Fatal(err)
			}
			if q.VisibilityTimeout == nil || *q.VisibilityTimeout != 180 {
				t.Errorf("VisibilityTimeout = %v, want 180", q.VisibilityTimeout)
			}
			policy, ok := q.RedrivePolicy.(map[string]interface{})
			if !ok {
				t.Fatalf("RedrivePolicy = %#v, want an object", q.RedrivePolicy)
			}
			if got, want := policy["deadLetterTargetArn"], getAttPrefix+tt.deadLetterQueue+".Arn"; got != want {
				t.Errorf("deadLetterTargetArn = %#v, want %q", got, want)
			}
			if got := policy["maxReceiveCount"]; got != float64(3) {
				t.Errorf("maxReceiveCount = %#v, want 3", got)
			}

			dlq, err := tmpl.GetSQSQueueWithName(tt.deadLetterQueue)
			if err != nil {
				t.Fatal(err)
			}
			if dlq.MessageRetentionPeriod == nil || *dlq.MessageRetentionPeriod != 14*24*60*60 {
				t.Errorf("dead-letter MessageRetentionPeriod = %v, want 1209600 (14 days)", dlq.MessageRetentionPeriod)
			}
			if dlq.RedrivePolicy != nil {
				t.Errorf("dead-letter RedrivePolicy = %#v, want none", dlq.RedrivePolicy)
			}
		})
	}
}

func TestOpenTemplateBucket(t *testing.T) {
	tmpl, err := OpenTemplate(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := tmpl.GetS3BucketWithName("DocumentsBucket")
	if err != nil {
		t.Fatal(err)
	}

	block := bucket.PublicAccessBlockConfiguration
	if block == nil {
		t.Fatal("PublicAccessBlockConfiguration is missing")
	}
	for name, v := range map[string]*bool{
		"BlockPublicAcls":       block.BlockPublicAcls,
		"BlockPublicPolicy":     block.BlockPublicPolicy,
		"IgnorePublicAcls":      block.IgnorePublicAcls,
		"RestrictPublicBuckets": block.RestrictPublicBuckets,
	} {
		if v == nil || !*v {
			t.Errorf("PublicAccessBlockConfiguration.%s is not true", name)
		}
	}
	if enc := bucket.BucketEncryption; enc == nil || len(enc.ServerSideEncryptionConfiguration) == 0 {
		t.Errorf("BucketEncryption = %+v, want server-side encryption", enc)
	}
	if bucket.VersioningConfiguration != nil {
		t.Errorf("VersioningConfiguration = %+v, want none (versioning off)", bucket.VersioningConfiguration)
	}
}

func TestParseGetAtt(t *testing.T) {
	tests := []struct {
		in            string
		wantID        string
		wantAttribute string
		wantOK        bool
	}{
		{getAttPrefix + "EmailsDeadLetterQueue.Arn", "EmailsDeadLetterQueue", "Arn", true},
		{getAttPrefix + "Table.StreamArn", "Table", "StreamArn", true},
		{getAttPrefix + "NoAttribute", "", "", false},
		{getAttPrefix + ".Arn", "", "", false},
		{"arn:aws:sqs:us-east-1:000000000000:q", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		id, attribute, ok := parseGetAtt(tt.in)
		if id != tt.wantID || attribute != tt.wantAttribute || ok != tt.wantOK {
			t.Errorf("parseGetAtt(%q) = %q, %q, %v; want %q, %q, %v", tt.in, id, attribute, ok, tt.wantID, tt.wantAttribute, tt.wantOK)
		}
	}
}

func TestGetAttReferenceForms(t *testing.T) {
	tests := []struct {
		name  string
		input interface{}
		want  interface{}
	}{
		{"short form", "Queue.Arn", getAttPrefix + "Queue.Arn"},
		{"list form", []interface{}{"Queue", "Arn"}, getAttPrefix + "Queue.Arn"},
		{"list with non-string", []interface{}{"Queue", 1.0}, nil},
		{"number", 1.0, nil},
	}
	for _, tt := range tests {
		if got := getAttReference("Fn::GetAtt", tt.input, nil); got != tt.want {
			t.Errorf("%s: getAttReference(%#v) = %#v, want %#v", tt.name, tt.input, got, tt.want)
		}
	}
}

func TestRefReference(t *testing.T) {
	template := map[string]interface{}{
		"Parameters": map[string]interface{}{
			"Stage": map[string]interface{}{"Type": "String", "Default": "dev"},
		},
	}
	tests := []struct {
		input interface{}
		want  interface{}
	}{
		{"Stage", "dev"},
		{"AWS::Region", "us-east-1"},
		{"AWS::NoValue", nil},
		{"HttpApi", refPrefix + "HttpApi"},
		{1.0, nil},
	}
	for _, tt := range tests {
		if got := refReference("Ref", tt.input, template); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("refReference(%#v) = %#v, want %#v", tt.input, got, tt.want)
		}
	}
}

func TestOpenTemplateKeepsReferences(t *testing.T) {
	tmpl, err := OpenTemplate(openRepoTemplatePath(t))
	if err != nil {
		t.Fatal(err)
	}
	fn, err := tmpl.GetServerlessGlobalFunction()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"STAGE":                        "dev",
		"TABLE_NAME":                   refPrefix + "Table",
		"DOCUMENTS_BUCKET_NAME":        refPrefix + "DocumentsBucket",
		"WEBHOOK_DELIVERIES_QUEUE_URL": refPrefix + "WebhookDeliveriesQueue",
		"EMAILS_QUEUE_URL":             refPrefix + "EmailsQueue",
	}
	for name, value := range want {
		if got := fn.Environment.Variables[name]; got != value {
			t.Errorf("Globals.Function.Environment.Variables[%s] = %q, want %q", name, got, value)
		}
	}
}

func TestBucketName(t *testing.T) {
	tests := []struct {
		prefix, logicalID string
		want              string
		wantErr           bool
	}{
		{"t1a2b3c4d-", "DocumentsBucket", "t1a2b3c4d-documentsbucket", false},
		{"", "DocumentsBucket", "documentsbucket", false},
		{"", "B", "", true},
		{strings.Repeat("a", 50) + "-", "DocumentsBucket", "", true},
	}
	for _, tt := range tests {
		got, err := bucketName(tt.prefix, tt.logicalID)
		if (err != nil) != tt.wantErr {
			t.Errorf("bucketName(%q, %q) error = %v, want error %v", tt.prefix, tt.logicalID, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("bucketName(%q, %q) = %q, want %q", tt.prefix, tt.logicalID, got, tt.want)
		}
	}
}

func TestFindModuleRoot(t *testing.T) {
	root := t.TempDir()
	nested := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/m\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	got, err := FindModuleRoot(nested)
	if err != nil {
		t.Fatal(err)
	}
	if got != root {
		t.Errorf("FindModuleRoot(%s) = %s, want %s", nested, got, root)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// keyNames formats a key schema as "PK HASH, SK RANGE".
func keyNames(keys []cfndynamodb.Table_KeySchema) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k.AttributeName+" "+k.KeyType)
	}
	return strings.Join(parts, ", ")
}
