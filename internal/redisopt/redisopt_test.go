package redisopt

import (
	"strings"
	"testing"

	"github.com/flexgate/flexgate/config"
)

// TestSettingsKey: equal settings share a key, whether or not they are the
// same value; any change that makes another connection (an address, the
// password, a sentinel's master) gives another; the password never shows.
func TestSettingsKey(t *testing.T) {
	base := func() *config.Redis {
		return &config.Redis{Address: "redis:6379", Password: "s3cret-pass",
			Sentinel: &config.RedisSentinel{Addresses: []string{"s1:26379"}, MasterName: "main"}}
	}
	k := SettingsKey(base())
	if SettingsKey(base()) != k {
		t.Fatal("equal settings gave different keys")
	}
	for name, change := range map[string]func(*config.Redis){
		"address":  func(r *config.Redis) { r.Address = "redis:6380" },
		"password": func(r *config.Redis) { r.Password = "other" },
		"db":       func(r *config.Redis) { r.DB = 1 },
		"master":   func(r *config.Redis) { r.Sentinel.MasterName = "other" },
	} {
		r := base()
		change(r)
		if SettingsKey(r) == k {
			t.Errorf("a different %s gave the same key", name)
		}
	}
	if strings.Contains(k, "s3cret") {
		t.Error("the key shows the password")
	}
}
