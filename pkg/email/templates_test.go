package email_test

import (
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/email"
)

// sampleVars holds every variable a kind's templates use.
var sampleVars = map[email.Kind]map[string]string{
	email.SigningRequest:         {"envelope_title": "NDA", "sender_name": "Ada", "recipient_name": "Bob"},
	email.NextSigner:             {"envelope_title": "NDA", "sender_name": "Ada", "recipient_name": "Bob"},
	email.EnvelopeCompleted:      {"envelope_title": "NDA", "sender_name": "Ada", "recipient_name": "Bob"},
	email.EnvelopeRejected:       {"envelope_title": "NDA", "sender_name": "Ada", "recipient_name": "Bob", "rejected_by": "Cy", "reason": "wrong date"},
	email.EnvelopeVoided:         {"envelope_title": "NDA", "sender_name": "Ada", "recipient_name": "Bob", "reason": ""},
	email.OrganizationInvitation: {"inviter_name": "Ada", "organization_name": "Acme", "role": "admin", "expires_at": "Tue, 08 Dec 2026 10:00:00 UTC", "invitation_id": "inv_x", "invitation_code": "sic_0123456789abcdefABCDEFGH"},
	email.NewLogin:               {"user_name": "Ada", "ip": "203.0.113.7", "user_agent": "Firefox", "logged_in_at": "2026-12-01T10:00:00Z"},
	email.LowCreditBalance:       {"user_name": "Ada", "workspace_name": "Acme", "balance": "3", "threshold": "5"},
}

func sampleJob(kind email.Kind) email.Job {
	return email.Job{
		ID:          "eml_test",
		Kind:        kind,
		EventID:     "evt_test",
		To:          "bob@example.com",
		EnvelopeID:  "env_1",
		RecipientID: "rcp_1",
		Vars:        sampleVars[kind],
	}
}

func TestRenderEveryKind(t *testing.T) {
	tmpl, err := email.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range email.Kinds {
		t.Run(string(kind), func(t *testing.T) {
			msg, err := tmpl.Render(sampleJob(kind), "https://sign.example/s/tok123", "https://app.example")
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if msg.Subject == "" || strings.ContainsAny(msg.Subject, "\r\n") {
				t.Errorf("subject = %q; want one non-empty line", msg.Subject)
			}
			if strings.TrimSpace(msg.Text) == "" {
				t.Error("text body is empty")
			}
			if !strings.Contains(msg.HTML, "<html") || !strings.Contains(msg.HTML, "</html>") {
				t.Error("HTML body is not a whole document")
			}
			if kind.NeedsSigningLink() {
				if !strings.Contains(msg.Text, "https://sign.example/s/tok123") {
					t.Error("text body lacks the signing link")
				}
				if !strings.Contains(msg.HTML, `href="https://sign.example/s/tok123"`) {
					t.Error("HTML body lacks the signing link")
				}
			}
		})
	}
}

func TestRenderMissingVariable(t *testing.T) {
	tmpl, err := email.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	job := sampleJob(email.EnvelopeCompleted)
	job.Vars = map[string]string{"envelope_title": "NDA"}
	if _, err := tmpl.Render(job, "", ""); err == nil {
		t.Error("Render succeeded without sender_name and recipient_name")
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	tmpl, err := email.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	job := sampleJob(email.EnvelopeCompleted)
	job.Vars = map[string]string{"envelope_title": `<script>alert(1)</script>`, "sender_name": "Ada & Co", "recipient_name": "Bob"}
	msg, err := tmpl.Render(job, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.HTML, "<script>") {
		t.Error("HTML body contains the title's markup unescaped")
	}
	if !strings.Contains(msg.HTML, "&lt;script&gt;") {
		t.Error("HTML body lacks the escaped title")
	}
	if !strings.Contains(msg.Text, "<script>alert(1)</script>") {
		t.Error("text body changed the title")
	}
}

func TestRenderRejectsUnsafeLink(t *testing.T) {
	tmpl, err := email.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	msg, err := tmpl.Render(sampleJob(email.SigningRequest), "javascript:alert(1)", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(msg.HTML, "javascript:") {
		t.Error("HTML body links to a javascript: URL")
	}
}

func TestRenderSubjectIsOneLine(t *testing.T) {
	tmpl, err := email.ParseTemplates()
	if err != nil {
		t.Fatal(err)
	}
	job := sampleJob(email.EnvelopeCompleted)
	job.Vars["envelope_title"] = "line one\r\nBcc: victim@example.com"
	msg, err := tmpl.Render(job, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(msg.Subject, "\r\n") {
		t.Errorf("subject = %q; want a single line", msg.Subject)
	}
}

func TestJobValidate(t *testing.T) {
	valid := sampleJob(email.SigningRequest)
	cases := []struct {
		name   string
		change func(*email.Job)
	}{
		{"missing id", func(j *email.Job) { j.ID = "" }},
		{"unknown kind", func(j *email.Job) { j.Kind = "postcard" }},
		{"invalid address", func(j *email.Job) { j.To = "bob" }},
		{"signing request without recipient", func(j *email.Job) { j.RecipientID = "" }},
	}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid job: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j := valid
			tc.change(&j)
			if err := j.Validate(); err == nil {
				t.Error("Validate accepted the job")
			}
		})
	}
}

func TestJobIDDeterministic(t *testing.T) {
	ts := sampleTime
	a := email.JobID("evt_1", ts, email.NewLogin, "Ada@Example.com")
	if b := email.JobID("evt_1", ts, email.NewLogin, "ada@example.com"); a != b {
		t.Errorf("ids differ by address case: %s, %s", a, b)
	}
	if c := email.JobID("evt_2", ts, email.NewLogin, "ada@example.com"); c == a {
		t.Error("two events gave the same job id")
	}
	if d := email.JobID("evt_1", ts, email.LowCreditBalance, "ada@example.com"); d == a {
		t.Error("two kinds gave the same job id")
	}
	if !strings.HasPrefix(a, "eml_") || len(a) != len("eml_")+26 {
		t.Errorf("job id %q is not eml_ and a ULID", a)
	}
}
