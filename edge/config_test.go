package edge

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.QueueLen = 0 }, "QueueLen"},
		{func(c *Config) { c.QueueBytes = -1 }, "QueueBytes"},
		{func(c *Config) { c.MaxHighBeforeLow = -1 }, "MaxHighBeforeLow"},
		{func(c *Config) { c.FairnessSlice = -time.Second }, "FairnessSlice"},
		{func(c *Config) { c.Rate = -1 }, "Rate"},
		{func(c *Config) { c.BatchFrames = 0 }, "BatchFrames"},
		{func(c *Config) { c.Flushers = -1 }, "Flushers"},
		{func(c *Config) { c.MaxFrameSize = 3 }, "MaxFrameSize"},
		{func(c *Config) { c.MaxFrameSize = 1023 }, "MaxFrameSize must be at least 1024 (1 KiB), got 1023"},
		{func(c *Config) { c.MaxSessions = -1 }, "MaxSessions"},
		{func(c *Config) { c.ConnectRate = -1 }, "ConnectRate"},
		{func(c *Config) { c.ClientByteRate = -0.5 }, "ClientByteRate"},
		{func(c *Config) { c.MaxGroups = 33 }, "MaxGroups must be at most 32"},
		{func(c *Config) { c.MaxPendingFrameBytes = c.MaxFrameSize - 1 }, "MaxPendingFrameBytes and MaxFrameSize do not fit: the first must be 0 or at least the second"},
		{func(c *Config) { c.TryPush = 7 }, "TryPush"},
		{func(c *Config) { c.DrainTimeout = -1 }, "DrainTimeout"},
	} {
		c := DefaultConfig()
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v; want an error naming %s", err, tc.want)
		}
	}
	c := DefaultConfig()
	c.QueueLen, c.BatchBytes = 0, 0
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "QueueLen") || !strings.Contains(err.Error(), "BatchBytes") {
		t.Fatalf("Validate() = %v; want both bad fields named", err)
	}
	if _, err := NewServer(Options{Config: c, Auth: DevAuth{}}); err == nil {
		t.Fatal("NewServer accepted an invalid config")
	}
	if _, err := NewServer(Options{Config: DefaultConfig()}); err == nil {
		t.Fatal("NewServer accepted no authenticator")
	}
}
