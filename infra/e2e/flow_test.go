package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/signsecure/signsecure/pkg/ids"
	"github.com/signsecure/signsecure/pkg/localstack"
)

var (
	signingLink    = regexp.MustCompile(`https?://[^\s"<>]+/v1/signing/sst_[A-Za-z0-9]+`)
	invitationCode = regexp.MustCompile(`sic_[A-Za-z0-9]{24}`)
)

// uniq returns a suffix that keeps this run's addresses apart from other
// runs' mail in the shared SES emulator.
func uniq() string { return strings.ToLower(ids.New("r"))[2:14] }

func samplePDF(t *testing.T) []byte {
	t.Helper()
	repo, err := localstack.FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := os.ReadFile(filepath.Join(repo, "docs", "examples", "sample.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	return pdf
}

// TestProductFlow walks the product as two users and an integrator
// would: sign-up, an organization with an invited member, credits, keys,
// a webhook receiver, one envelope completed and one rejected; then it
// checks the notifications, emails and webhook deliveries that result.
func TestProductFlow(t *testing.T) {
	u := uniq()
	anon := &client{t: t}
	pdf := samplePDF(t)

	// Two users sign up.
	ownerEmail, memberEmail := "owner-"+u+"@example.com", "member-"+u+"@example.com"
	owner := anon.as(anon.must(http.StatusCreated, "POST", "/v1/auth/signup",
		fmt.Sprintf(`{"name":"Olive Owner","email":%q,"password":"correct horse battery"}`, ownerEmail)).body["session"].(map[string]any)["token"].(string))
	member := anon.as(anon.must(http.StatusCreated, "POST", "/v1/auth/signup",
		fmt.Sprintf(`{"name":"Mia Member","email":%q,"password":"correct horse battery"}`, memberEmail)).body["session"].(map[string]any)["token"].(string))
	owner.must(http.StatusOK, "GET", "/v1/me", nil)

	// The owner creates an organization and invites the member, who
	// accepts with the code from the invitation email.
	orgID := owner.must(http.StatusCreated, "POST", "/v1/organizations", `{"name":"Acme `+u+`"}`).str("id")
	invID := owner.must(http.StatusCreated, "POST", "/v1/organizations/"+orgID+"/invitations",
		fmt.Sprintf(`{"email":%q,"role":"member"}`, memberEmail)).str("id")
	if got := member.must(http.StatusOK, "GET", "/v1/me/invitations", nil).list(); len(got) != 1 || got[0]["id"] != invID {
		t.Fatalf("member's invitations = %v; want %s", got, invID)
	}
	var code string
	eventually(t, "the invitation email", func() bool {
		for _, m := range mailTo(t, memberEmail) {
			if c := invitationCode.FindString(m.Text); c != "" {
				code = c
				return true
			}
		}
		return false
	})
	member.must(http.StatusOK, "POST", "/v1/me/invitations/"+invID+"/accept", `{"code":"`+code+`"}`)
	if got := owner.must(http.StatusOK, "GET", "/v1/organizations/"+orgID+"/members", nil).list(); len(got) != 2 {
		t.Errorf("members = %d; want 2", len(got))
	}

	// Credits: the owner buys a pack for the organization; the member may not.
	org := owner.in(orgID)
	purchase := org.must(http.StatusCreated, "POST", "/v1/billing/purchases", `{"pack_id":"starter"}`)
	member.in(orgID).must(http.StatusForbidden, "POST", "/v1/billing/purchases", `{"pack_id":"starter"}`)
	invoice := org.must(http.StatusOK, "GET", "/v1/billing/invoices/"+purchase.str("id"), nil)
	if !strings.HasPrefix(string(invoice.raw), "%PDF-") {
		t.Errorf("invoice does not start with %%PDF-: %q", invoice.raw[:min(8, len(invoice.raw))])
	}

	// Keys: the owner creates an organization key; the member cannot.
	member.in(orgID).must(http.StatusForbidden, "POST", "/v1/api-keys", `{"name":"nope"}`)
	key := anon.as(org.must(http.StatusCreated, "POST", "/v1/api-keys", `{"name":"integration","rate_limit_per_minute":100}`).str("key"))
	if ws := key.must(http.StatusOK, "GET", "/v1/workspace", nil); ws.str("workspace_id") != orgID {
		t.Fatalf("the key acts in %s; want %s", ws.str("workspace_id"), orgID)
	}
	walletBefore := key.must(http.StatusOK, "GET", "/v1/billing/wallet", nil).body["balance"].(float64)

	// A webhook receiver for the organization's events.
	receiver := newReceiver(t)
	secret := org.must(http.StatusCreated, "POST", "/v1/webhooks",
		fmt.Sprintf(`{"url":%q,"description":"e2e","events":["*"],"enabled":true}`, receiver.url)).str("secret")
	receiver.setSecret(t, secret)

	// The integrator sends an envelope with the key; it completes.
	signer1, signer2, cc := "s1-"+u+"@example.com", "s2-"+u+"@example.com", "cc-"+u+"@example.com"
	done := key.must(http.StatusCreated, "POST", "/v1/envelopes", fmt.Sprintf(`{"title":"Contract %s","message":"Please sign","email_notifications":"all","recipients":[
		{"name":"First Signer","email":%q,"role":"signer","routing_order":1},
		{"name":"Second Signer","email":%q,"role":"signer","routing_order":2},
		{"name":"Copy","email":%q,"role":"cc","routing_order":1}]}`, u, signer1, signer2, cc)).str("id")
	key.must(http.StatusCreated, "POST", "/v1/envelopes/"+done+"/documents?filename=contract.pdf", pdf)
	key.must(http.StatusOK, "POST", "/v1/envelopes/"+done+"/send", nil)
	signFromEmail(t, anon, signer1, "First Signer")
	signFromEmail(t, anon, signer2, "Second Signer")
	if st := key.must(http.StatusOK, "GET", "/v1/envelopes/"+done, nil).str("status"); st != "completed" {
		t.Fatalf("envelope status = %s; want completed", st)
	}
	audit := key.must(http.StatusOK, "GET", "/v1/envelopes/"+done+"/audit", nil).list()
	if len(audit) < 5 {
		t.Errorf("audit trail has %d entries; want at least create, document, send and two signatures", len(audit))
	}

	// A second envelope is rejected by one of its two parallel signers;
	// the other gets an email about it.
	rejecter, bystander := "rj-"+u+"@example.com", "by-"+u+"@example.com"
	rejected := key.must(http.StatusCreated, "POST", "/v1/envelopes", fmt.Sprintf(`{"title":"Offer %s","email_notifications":"all","recipients":[
		{"name":"Reluctant","email":%q,"role":"signer","routing_order":1},
		{"name":"Bystander","email":%q,"role":"signer","routing_order":1}]}`, u, rejecter, bystander)).str("id")
	key.must(http.StatusCreated, "POST", "/v1/envelopes/"+rejected+"/documents?filename=offer.pdf", pdf)
	key.must(http.StatusOK, "POST", "/v1/envelopes/"+rejected+"/send", nil)
	link := waitForLink(t, rejecter)
	anon.must(http.StatusOK, "POST", link+"/reject", `{"reason":"Terms are wrong"}`)
	if st := key.must(http.StatusOK, "GET", "/v1/envelopes/"+rejected, nil).str("status"); st != "rejected" {
		t.Fatalf("second envelope status = %s; want rejected", st)
	}
	anon.must(http.StatusConflict, "POST", link+"/sign", `{"typed_name":"Too Late"}`)

	// Two sends cost two credits from the organization wallet, in the ledger.
	walletAfter := key.must(http.StatusOK, "GET", "/v1/billing/wallet", nil).body["balance"].(float64)
	if walletBefore-walletAfter != 2 {
		t.Errorf("organization wallet went from %v to %v; want two credits spent", walletBefore, walletAfter)
	}

	// Notifications: the owner, who created the key, is the sender.
	eventually(t, "the owner's envelope notifications", func() bool {
		raw := string(owner.must(http.StatusOK, "GET", "/v1/notifications", nil).raw)
		return strings.Contains(raw, "envelope.completed") && strings.Contains(raw, "envelope.rejected") && strings.Contains(raw, "organization.member_joined")
	})
	unread := owner.must(http.StatusOK, "GET", "/v1/notifications/unread-count", nil).body["unread"].(float64)
	if unread == 0 {
		t.Error("owner has no unread notifications")
	}
	owner.must(http.StatusOK, "POST", "/v1/notifications/read-all", nil)
	if n := owner.must(http.StatusOK, "GET", "/v1/notifications/unread-count", nil).body["unread"].(float64); n != 0 {
		t.Errorf("unread after read-all = %v; want 0", n)
	}

	// Emails: each recipient got what the "all" setting allows.
	eventually(t, "completion emails", func() bool {
		return hasSubject(mailTo(t, signer1), "complete") && hasSubject(mailTo(t, signer2), "complete") && hasSubject(mailTo(t, cc), "complete")
	})
	eventually(t, "the rejection email", func() bool { return hasSubject(mailTo(t, bystander), "rejected") })

	// Webhooks: signed deliveries of both envelopes' events arrived, and
	// the delivery log shows them.
	receiver.waitFor(t, "envelope.completed", "envelope.rejected", "envelope.sent", "envelope.signed")
	webhookID := org.must(http.StatusOK, "GET", "/v1/webhooks", nil).list()[0]["id"].(string)
	deliveries := org.must(http.StatusOK, "GET", "/v1/webhooks/"+webhookID+"/deliveries", nil).list()
	if len(deliveries) == 0 {
		t.Error("the delivery log is empty")
	}
}

// signFromEmail signs as the recipient, through the link in their
// signing-request email.
func signFromEmail(t *testing.T, anon *client, address, name string) {
	t.Helper()
	link := waitForLink(t, address)
	view := anon.must(http.StatusOK, "GET", link, nil)
	if strings.Contains(string(view.raw), "sst_") {
		t.Errorf("the signing view echoes a token: %s", truncate(view.raw))
	}
	anon.must(http.StatusOK, "POST", link+"/sign", fmt.Sprintf(`{"typed_name":%q}`, name))
}

func waitForLink(t *testing.T, address string) string {
	t.Helper()
	var link string
	eventually(t, "a signing link for "+address, func() bool {
		for _, m := range mailTo(t, address) {
			if l := signingLink.FindString(m.Text); l != "" {
				link = l
				return true
			}
		}
		return false
	})
	return link
}

func hasSubject(mails []mail, part string) bool {
	for _, m := range mails {
		if strings.Contains(m.Subject, part) {
			return true
		}
	}
	return false
}
