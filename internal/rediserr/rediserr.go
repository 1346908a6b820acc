// Package rediserr tells, of Redis's error answers, those that refuse every
// write until an operator or a failover acts, and what the operator should
// do: features that write to the shared storage treat such a Redis as down,
// and say why.
package rediserr

import (
	"strings"

	"github.com/redis/rueidis"
)

// refusals are the error codes of the answers that refuse writes, with
// what they mean and what to do.
var refusals = []struct{ code, advice string }{
	{"READONLY", "Redis is a read-only replica (after a failover the old master is one): " +
		"point sharedStorage.redis at the master, or use sentinel so that the gateway follows failovers"},
	{"OOM", "Redis is out of memory (used memory above maxmemory) and cannot evict: " +
		"raise maxmemory, or let Redis evict keys that expire (maxmemory-policy volatile-lru or volatile-ttl)"},
	{"NOREPLICAS", "Redis refuses writes while fewer replicas than min-replicas-to-write are connected: " +
		"bring the replicas back or lower min-replicas-to-write"},
	{"MISCONF", "Redis refuses writes because its last RDB snapshot failed (stop-writes-on-bgsave-error): " +
		"see Redis's log and fix its disk"},
}

// WriteRefused returns, when err is Redis refusing a write for one of the
// reasons above, what is wrong and what the operator should do; "" for any
// other error. A write made by a script is refused with the same code;
// Redis 6 wraps it in its "Error running script" answer, after a '-'. Safe
// for concurrent use.
func WriteRefused(err error) string {
	re, ok := rueidis.IsRedisErr(err)
	if !ok || re.IsNil() {
		return ""
	}
	msg := re.Error()
	for _, r := range refusals {
		if strings.HasPrefix(msg, r.code+" ") || strings.Contains(msg, ": -"+r.code+" ") {
			return r.advice
		}
	}
	return ""
}
