package creditalerts

import (
	"encoding/json"
	"fmt"
)

// Metric names and namespace of the CloudWatch metrics that each run
// publishes in the embedded metric format (EMF). Both are counts per run,
// with the dimension MetricDimension set to the Lambda function name.
const (
	MetricNamespace             = "SignSecure"
	MetricDimension             = "Function"
	MetricWalletsBelowThreshold = "WalletsBelowThreshold"
	MetricAlertsRaised          = "LowBalanceAlertsRaised"
)

// defaultFunctionName is the value of the Function dimension outside
// Lambda, where AWS_LAMBDA_FUNCTION_NAME is not set.
const defaultFunctionName = "credit-alerts"

// emfMetadata is the "_aws" member of an EMF document.
type emfMetadata struct {
	// Timestamp is in milliseconds since the epoch.
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// emfDirective is an EMF MetricDirective: the namespace, dimension sets
// and metrics that CloudWatch extracts from the root members.
type emfDirective struct {
	Namespace  string          `json:"Namespace"`
	Dimensions [][]string      `json:"Dimensions"`
	Metrics    []emfDefinition `json:"Metrics"`
}

// emfDefinition names one metric and its unit.
type emfDefinition struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

// writeMetrics writes one EMF line with the run's counts. The number of
// wallets below their threshold is published only when the run listed
// every page of the index, because a partial count would read as fewer
// low wallets.
func (h *Handler) writeMetrics(res Result, complete bool) error {
	doc := map[string]any{
		MetricDimension:    h.function,
		MetricAlertsRaised: res.AlertsRaised,
	}
	defs := []emfDefinition{{Name: MetricAlertsRaised, Unit: "Count"}}
	if complete {
		doc[MetricWalletsBelowThreshold] = res.WalletsBelowThreshold
		defs = append([]emfDefinition{{Name: MetricWalletsBelowThreshold, Unit: "Count"}}, defs...)
	}
	doc["_aws"] = emfMetadata{
		Timestamp: h.now().UnixMilli(),
		CloudWatchMetrics: []emfDirective{{
			Namespace:  MetricNamespace,
			Dimensions: [][]string{{MetricDimension}},
			Metrics:    defs,
		}},
	}

	line, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode metrics: %w", err)
	}
	line = append(line, '\n')

	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.out.Write(line); err != nil {
		return fmt.Errorf("write metrics: %w", err)
	}
	return nil
}
