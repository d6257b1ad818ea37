package localrun

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

func TestConvertValue(t *testing.T) {
	cases := []struct {
		name string
		in   streamtypes.AttributeValue
		want string // the value's JSON as Lambda delivers it
	}{
		{"string", &streamtypes.AttributeValueMemberS{Value: "evt_1"}, `{"S":"evt_1"}`},
		{"number keeps its text", &streamtypes.AttributeValueMemberN{Value: "12345678901234567890.5"}, `{"N":"12345678901234567890.5"}`},
		{"binary", &streamtypes.AttributeValueMemberB{Value: []byte{0, 1, 2}}, `{"B":"AAEC"}`},
		{"bool", &streamtypes.AttributeValueMemberBOOL{Value: true}, `{"BOOL":true}`},
		{"null", &streamtypes.AttributeValueMemberNULL{Value: true}, `{"NULL":true}`},
		{"string set", &streamtypes.AttributeValueMemberSS{Value: []string{"a", "b"}}, `{"SS":["a","b"]}`},
		{"number set", &streamtypes.AttributeValueMemberNS{Value: []string{"1", "2.5"}}, `{"NS":["1","2.5"]}`},
		{"binary set", &streamtypes.AttributeValueMemberBS{Value: [][]byte{{1}, {2}}}, `{"BS":["AQ==","Ag=="]}`},
		{"list", &streamtypes.AttributeValueMemberL{Value: []streamtypes.AttributeValue{
			&streamtypes.AttributeValueMemberS{Value: "x"},
			&streamtypes.AttributeValueMemberN{Value: "7"},
		}}, `{"L":[{"S":"x"},{"N":"7"}]}`},
		{"nested map", &streamtypes.AttributeValueMemberM{Value: map[string]streamtypes.AttributeValue{
			"inner": &streamtypes.AttributeValueMemberM{Value: map[string]streamtypes.AttributeValue{
				"flag": &streamtypes.AttributeValueMemberBOOL{Value: false},
			}},
		}}, `{"M":{"inner":{"M":{"flag":{"BOOL":false}}}}}`},
		{"empty map", &streamtypes.AttributeValueMemberM{Value: map[string]streamtypes.AttributeValue{}}, `{"M":{}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := convertValue(tc.in)
			if err != nil {
				t.Fatalf("convertValue: %v", err)
			}
			raw, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("marshal converted value: %v", err)
			}
			if string(raw) != tc.want {
				t.Errorf("converted JSON = %s; want %s", raw, tc.want)
			}

			// The value must survive the JSON round trip that Lambda makes.
			var back events.DynamoDBAttributeValue
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatalf("unmarshal converted value: %v", err)
			}
			if back.DataType() != got.DataType() {
				t.Errorf("data type after round trip = %v; want %v", back.DataType(), got.DataType())
			}
		})
	}
}

func TestConvertValueRejectsUnknownMember(t *testing.T) {
	if _, err := convertValue(&streamtypes.UnknownUnionMember{Tag: "X"}); err == nil {
		t.Error("convertValue accepted an unknown union member")
	}
}

func TestConvertImageNil(t *testing.T) {
	got, err := convertImage(nil)
	if err != nil || got != nil {
		t.Errorf("convertImage(nil) = %v, %v; want nil, nil", got, err)
	}
}
