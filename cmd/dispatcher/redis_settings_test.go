package main

import (
	"io"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestRedisSettings: REDIS_URL still makes a one-server client; REDIS_ADDRS
// with two or more seeds (or REDIS_CLUSTER) a cluster client; with
// REDIS_MASTER_NAME a Sentinel failover client; credentials come from
// REDIS_USERNAME/REDIS_PASSWORD; contradictory settings are refused
// without echoing a secret.
func TestRedisSettings(t *testing.T) {
	client := func(envs map[string]string, args ...string) (redis.UniversalClient, error) {
		t.Helper()
		var s settings
		fs := newFlagSet("run", "", io.Discard)
		s.register(fs, func(k string) string { return envs[k] }, settings{})
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return s.redisClient()
	}
	must := func(c redis.UniversalClient, err error) redis.UniversalClient {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	c := must(client(map[string]string{"REDIS_URL": "redis://u:secret@127.0.0.1:6390/2"}))
	if o := c.(*redis.Client).Options(); o.Addr != "127.0.0.1:6390" || o.DB != 2 || o.Password != "secret" || o.PoolSize < 64 {
		t.Errorf("REDIS_URL options %+v", o)
	}
	// The deliver lanes' sends need connections (redisPoolSize); a
	// pool_size in the URL wins.
	if o := must(client(map[string]string{"REDIS_URL": "redis://127.0.0.1:6390/0?pool_size=7"})).(*redis.Client).Options(); o.PoolSize != 7 {
		t.Errorf("pool_size=7 in REDIS_URL: pool %d", o.PoolSize)
	}

	cc, ok := must(client(map[string]string{"REDIS_ADDRS": "10.0.0.1:7000, 10.0.0.2:7000,10.0.0.3:7000",
		"REDIS_USERNAME": "disp", "REDIS_PASSWORD": "pw"})).(*redis.ClusterClient)
	if !ok {
		t.Fatal("REDIS_ADDRS with 3 seeds is not a cluster client")
	}
	if o := cc.Options(); len(o.Addrs) != 3 || o.Addrs[1] != "10.0.0.2:7000" || o.Username != "disp" || o.Password != "pw" || o.PoolSize < 64 {
		t.Errorf("cluster options %+v", o)
	}
	if _, ok := must(client(map[string]string{"REDIS_CLUSTER": "true"}, "--redis-addrs", "cfg.example:6379")).(*redis.ClusterClient); !ok {
		t.Error("REDIS_CLUSTER=true with one seed is not a cluster client")
	}
	if _, ok := must(client(map[string]string{"REDIS_ADDRS": "127.0.0.1:6390"})).(*redis.Client); !ok {
		t.Error("one REDIS_ADDRS seed without REDIS_CLUSTER is not a plain client")
	}

	var s settings
	fs := newFlagSet("run", "", io.Discard)
	env := map[string]string{"REDIS_ADDRS": "s1:26379,s2:26379", "REDIS_MASTER_NAME": "viogen",
		"REDIS_PASSWORD": "pw", "REDIS_SENTINEL_PASSWORD": "spw", "REDIS_TLS": "true"}
	s.register(fs, func(k string) string { return env[k] }, settings{})
	_ = fs.Parse(nil)
	o := s.universalOptions(splitList(s.redisAddrs))
	if o.MasterName != "viogen" || o.IsClusterMode || o.Password != "pw" || o.SentinelPassword != "spw" || o.TLSConfig == nil {
		t.Errorf("sentinel options %+v", o)
	}
	fc := must(s.redisClient())
	if _, ok := fc.(*redis.Client); !ok {
		t.Errorf("sentinel client is %T, want a failover *redis.Client", fc)
	}

	for _, bad := range []map[string]string{
		{"REDIS_URL": "redis://:hunter2@h:1/0", "REDIS_ADDRS": "a:1,b:2"},
		{"REDIS_MASTER_NAME": "viogen"},
		{},
		{"REDIS_URL": "http://:hunter2@h"},
	} {
		_, err := client(bad)
		if err == nil {
			t.Errorf("%v accepted", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
