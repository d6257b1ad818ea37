package lambdahttp_test

import (
	"encoding/json"
	"net/http"

	"github.com/signsecure/signsecure/pkg/lambdahttp"
)

// The main function of a route's Lambda function builds the handler once,
// at cold start, and passes it to Start, which serves API Gateway events
// until the runtime stops the process.
func ExampleStart() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		requestID, _ := lambdahttp.RequestID(r.Context())

		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"id":         r.PathValue("id"),
			"request_id": requestID,
		})
	})

	lambdahttp.Start(mux)
}
