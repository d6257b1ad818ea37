package webhooks

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	env := map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "http://127.0.0.1:4566/000000000000/deliveries"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QueueURL != env["WEBHOOK_DELIVERIES_QUEUE_URL"] {
		t.Errorf("QueueURL = %q", cfg.QueueURL)
	}
	if cfg.AllowInsecureLoopback {
		t.Error("AllowInsecureLoopback is on by default")
	}
	if cfg.MaxAttempts != 3 {
		t.Errorf("MaxAttempts = %d; want 3", cfg.MaxAttempts)
	}
	if len(cfg.RetryDelays) != 2 || cfg.RetryDelays[0] != time.Minute || cfg.RetryDelays[1] != 10*time.Minute {
		t.Errorf("RetryDelays = %v; want [1m 10m]", cfg.RetryDelays)
	}
	if cfg.Timeout != 10*time.Second {
		t.Errorf("Timeout = %s; want 10s", cfg.Timeout)
	}
}

func TestConfigFromEnvOverrides(t *testing.T) {
	env := map[string]string{
		"WEBHOOK_DELIVERIES_QUEUE_URL":    "q",
		"WEBHOOK_ALLOW_INSECURE_LOOPBACK": "true",
		"WEBHOOK_RETRY_DELAYS":            "1s, 2s",
		"WEBHOOK_TIMEOUT":                 "3s",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.AllowInsecureLoopback {
		t.Error("AllowInsecureLoopback = false; want true")
	}
	if len(cfg.RetryDelays) != 2 || cfg.RetryDelays[0] != time.Second || cfg.RetryDelays[1] != 2*time.Second {
		t.Errorf("RetryDelays = %v; want [1s 2s]", cfg.RetryDelays)
	}
	if cfg.Timeout != 3*time.Second {
		t.Errorf("Timeout = %s; want 3s", cfg.Timeout)
	}
}

func TestConfigFromEnvRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no queue", map[string]string{}, "WEBHOOK_DELIVERIES_QUEUE_URL"},
		{"bad flag", map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "q", "WEBHOOK_ALLOW_INSECURE_LOOPBACK": "yes please"}, "WEBHOOK_ALLOW_INSECURE_LOOPBACK"},
		{"bad delays", map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "q", "WEBHOOK_RETRY_DELAYS": "soon"}, "WEBHOOK_RETRY_DELAYS"},
		{"one delay", map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "q", "WEBHOOK_RETRY_DELAYS": "1s"}, "retry delays"},
		{"sub-second delay", map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "q", "WEBHOOK_RETRY_DELAYS": "1s,500ms"}, "from 1s to 12h"},
		{"delay over 12h", map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "q", "WEBHOOK_RETRY_DELAYS": "1s,13h"}, "from 1s to 12h"},
		{"bad timeout", map[string]string{"WEBHOOK_DELIVERIES_QUEUE_URL": "q", "WEBHOOK_TIMEOUT": "-1s"}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v; want one naming %s", err, tt.want)
			}
		})
	}
}

func TestRetryDelayByReceiveCount(t *testing.T) {
	cfg := DefaultConfig()
	for receives, want := range map[int]time.Duration{0: time.Minute, 1: time.Minute, 2: 10 * time.Minute, 3: 10 * time.Minute} {
		if got := cfg.retryDelay(receives); got != want {
			t.Errorf("retryDelay(%d) = %s; want %s", receives, got, want)
		}
	}
}
