package email

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

//go:embed templates
var templateFiles embed.FS

// Message is a rendered email.
type Message struct {
	Subject string
	Text    string
	HTML    string
}

// Templates renders each kind of email from the files under templates/:
// <kind>.txt defines "subject" and "body" as text templates, and
// <kind>.html defines "content", which layout.html wraps, as an HTML
// template. A template that names a variable the job does not carry fails
// to render, so a job and its templates cannot drift apart silently.
type Templates struct {
	text map[Kind]*texttemplate.Template
	html map[Kind]*htmltemplate.Template
}

// ParseTemplates parses the embedded templates of every kind.
func ParseTemplates() (*Templates, error) {
	t := &Templates{text: map[Kind]*texttemplate.Template{}, html: map[Kind]*htmltemplate.Template{}}
	for _, kind := range Kinds {
		txt, err := texttemplate.New(string(kind)).Option("missingkey=error").
			ParseFS(templateFiles, "templates/"+string(kind)+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse %s text template: %w", kind, err)
		}
		for _, name := range []string{"subject", "body"} {
			if txt.Lookup(name) == nil {
				return nil, fmt.Errorf("parse %s text template: no %q template defined", kind, name)
			}
		}
		html, err := htmltemplate.New(string(kind)).Option("missingkey=error").
			ParseFS(templateFiles, "templates/layout.html", "templates/"+string(kind)+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s HTML template: %w", kind, err)
		}
		if html.Lookup("content") == nil {
			return nil, fmt.Errorf("parse %s HTML template: no \"content\" template defined", kind)
		}
		t.text[kind], t.html[kind] = txt, html
	}
	return t, nil
}

// templateData is the data passed to the templates.
type templateData struct {
	Job  Job
	Vars map[string]string
	// SigningLink is the recipient's private signing link, for the kinds
	// that need one.
	SigningLink string
	// AppURL is the web application's address.
	AppURL string
	// Subject is the rendered subject, for the HTML title.
	Subject string
}

// Render renders the job's email. signingLink is used only by the kinds
// that need one.
func (t *Templates) Render(job Job, signingLink, appURL string) (Message, error) {
	txt, ok := t.text[job.Kind]
	if !ok {
		return Message{}, fmt.Errorf("render email job %s: no templates for kind %q", job.ID, job.Kind)
	}
	vars := job.Vars
	if vars == nil {
		vars = map[string]string{}
	}
	data := templateData{Job: job, Vars: vars, SigningLink: signingLink, AppURL: appURL}

	var subject, body, html bytes.Buffer
	if err := txt.ExecuteTemplate(&subject, "subject", data); err != nil {
		return Message{}, fmt.Errorf("render email job %s subject: %w", job.ID, err)
	}
	if err := txt.ExecuteTemplate(&body, "body", data); err != nil {
		return Message{}, fmt.Errorf("render email job %s text body: %w", job.ID, err)
	}
	data.Subject = oneLine(subject.String())
	if err := t.html[job.Kind].ExecuteTemplate(&html, "layout", data); err != nil {
		return Message{}, fmt.Errorf("render email job %s HTML body: %w", job.ID, err)
	}
	return Message{Subject: data.Subject, Text: strings.TrimLeft(body.String(), "\n"), HTML: html.String()}, nil
}

// oneLine joins the lines of s with spaces, because a subject is a single
// header line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
