package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signsecure/signsecure/pkg/email"
	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localrun"
	"github.com/signsecure/signsecure/pkg/localstack/localstacktest"
)

// pipelineAPI is the route table plus the dispatcher and email sender fed
// by the stream and queue pollers, as make run wires them.
type pipelineAPI struct {
	*testAPI
	sesURL string
}

func newPipelineAPI(t *testing.T) *pipelineAPI {
	t.Helper()
	env := localstacktest.New(t)
	cfg := testConfig(env)
	cfg.Accounts.Password.MemoryKiB, cfg.Accounts.Password.Iterations = 1024, 1
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	a, err := New(cfg, Deps{DynamoDB: env.Clients.DynamoDB, S3: env.Clients.S3, SQS: env.Clients.SQS, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h, err := a.Handler(a.Routes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.Envelopes.SigningBaseURL = srv.URL + "/v1/signing"

	w, err := a.NewWorkers(cfg, WorkerDeps{
		SQS: env.Clients.SQS, SES: env.Clients.SES, EmailsQueueURL: env.Queues["EmailsQueue"].URL,
		Email: email.Config{From: "SignSecure <no-reply@signsecure.example>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	arn, err := localrun.StreamARN(ctx, env.Clients.DynamoDB, env.TableName)
	if err != nil {
		t.Fatal(err)
	}
	stream := localrun.NewStreamPoller(env.Clients.DynamoDBStreams, arn, w.Dispatcher.Handle, localrun.StreamOptions{Logger: logger, PollInterval: 100 * time.Millisecond})
	queue := localrun.NewQueuePoller(env.Clients.SQS, env.Queues["EmailsQueue"].URL, w.Emails.Handle, localrun.QueueOptions{Logger: logger, WaitTime: time.Second})
	go func() { _ = stream.Run(ctx) }()
	go func() { _ = queue.Run(ctx) }()
	<-stream.Ready()

	return &pipelineAPI{testAPI: &testAPI{t: t, url: srv.URL, db: env.Clients.DynamoDB, table: env.TableName}, sesURL: env.Endpoints.SES}
}

// sentMail returns the subjects of the mail the SES emulator holds for an
// address.
func (p *pipelineAPI) sentMail(address string) []string {
	p.t.Helper()
	res, err := http.Get(p.sesURL + "/store")
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	var store struct {
		Emails []struct {
			Destination struct {
				To []string `json:"to"`
			} `json:"destination"`
			Subject string `json:"subject"`
		} `json:"emails"`
	}
	if err := json.NewDecoder(res.Body).Decode(&store); err != nil {
		p.t.Fatal(err)
	}
	var subjects []string
	for _, e := range store.Emails {
		for _, to := range e.Destination.To {
			if strings.Contains(strings.ToLower(to), strings.ToLower(address)) {
				subjects = append(subjects, e.Subject)
			}
		}
	}
	return subjects
}

// eventually retries check until it returns true or five seconds pass.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var signingLinkPattern = regexp.MustCompile(`/v1/signing/sst_[A-Za-z0-9]+`)

func TestEnvelopeCompletionThroughPipeline(t *testing.T) {
	pdf, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "examples", "sample.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	p := newPipelineAPI(t)
	_, token := p.signup("sender@example.com", "a long enough password")

	cases := []struct {
		setting                   string
		signingEmail, completedTo bool
	}{
		{"all", true, true},
		{"completion_only", false, true},
		{"none", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.setting, func(t *testing.T) {
			tag := strings.ToLower(ids.New("t"))[2:14]
			signer := fmt.Sprintf("signer-%s@example.com", tag)
			cc := fmt.Sprintf("cc-%s@example.com", tag)
			created := p.json("POST", "/v1/envelopes", token, fmt.Sprintf(`{"title":"Deal %s","message":"Please sign","email_notifications":%q,"recipients":[
				{"name":"Signer","email":%q,"role":"signer","routing_order":1},{"name":"Copy","email":%q,"role":"cc","routing_order":1}]}`, tag, tc.setting, signer, cc))
			if created.status != http.StatusCreated {
				t.Fatalf("create: %d %s", created.status, created.raw)
			}
			id := created.body["id"].(string)
			if res := p.do("POST", "/v1/envelopes/"+id+"/documents?filename=deal.pdf", token, bytes.NewReader(pdf), "Content-Type", "application/pdf"); res.status != http.StatusCreated {
				t.Fatalf("upload: %d %s", res.status, res.raw)
			}
			if res := p.json("POST", "/v1/envelopes/"+id+"/send", token, ""); res.status != http.StatusOK {
				t.Fatalf("send: %d %s", res.status, res.raw)
			}

			// The signer's link comes by email with "all", from the API otherwise.
			var link string
			if tc.signingEmail {
				eventually(t, "the signing request email", func() bool { return len(p.sentMail(signer)) > 0 })
				raw := p.rawMail(signer)
				link = signingLinkPattern.FindString(raw)
			} else {
				links := p.json("GET", "/v1/envelopes/"+id+"/signing-links", token, "")
				if links.status != http.StatusOK {
					t.Fatalf("signing links: %d %s", links.status, links.raw)
				}
				link = signingLinkPattern.FindString(links.raw)
			}
			if link == "" {
				t.Fatal("no signing link found")
			}
			if res := p.json("POST", link+"/sign", "", `{"typed_name":"Signer"}`); res.status != http.StatusOK {
				t.Fatalf("sign: %d %s", res.status, res.raw)
			}

			// The sender gets an in-app notification whatever the setting.
			eventually(t, "the completion notification", func() bool {
				res := p.json("GET", "/v1/notifications", token, "")
				return strings.Contains(res.raw, id) && strings.Contains(res.raw, "envelope.completed")
			})
			if tc.completedTo {
				eventually(t, "completion emails", func() bool {
					return hasSubject(p.sentMail(signer), "complete") && hasSubject(p.sentMail(cc), "complete")
				})
			} else {
				time.Sleep(2 * time.Second) // give the pipeline time to send what it must not
			}
			if got := p.sentMail(signer); !tc.signingEmail && hasSubject(got, "to sign") {
				t.Errorf("setting %s: signer got a signing request: %v", tc.setting, got)
			}
			if !tc.completedTo && (len(p.sentMail(signer)) > 0 || len(p.sentMail(cc)) > 0) {
				t.Errorf("setting %s: recipients got mail: %v %v", tc.setting, p.sentMail(signer), p.sentMail(cc))
			}
		})
	}
}

func hasSubject(subjects []string, part string) bool {
	for _, s := range subjects {
		if strings.Contains(s, part) {
			return true
		}
	}
	return false
}

// rawMail returns every stored email to the address as JSON text.
func (p *pipelineAPI) rawMail(address string) string {
	p.t.Helper()
	res, err := http.Get(p.sesURL + "/store")
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	var store struct {
		Emails []json.RawMessage `json:"emails"`
	}
	if err := json.NewDecoder(res.Body).Decode(&store); err != nil {
		p.t.Fatal(err)
	}
	var out strings.Builder
	for _, e := range store.Emails {
		if strings.Contains(strings.ToLower(string(e)), strings.ToLower(address)) {
			out.Write(e)
		}
	}
	return out.String()
}
