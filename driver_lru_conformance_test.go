package microcache_test

import (
	"testing"

	"github.com/httpimp/microcache"
	"github.com/httpimp/microcache/drivertest"
)

// TestDriverLRUConformance runs the Driver conformance suite on DriverLRU,
// with limits well above what the suite needs (drivertest.MinRecords
// records of drivertest.MinObjectSize bytes), with and without a byte
// limit.
func TestDriverLRUConformance(t *testing.T) {
	t.Run("Objects", func(t *testing.T) {
		drivertest.TestDriver(t, func(*testing.T) microcache.Driver {
			return microcache.NewDriverLRU(100 * drivertest.MinRecords)
		})
	})
	t.Run("Bytes", func(t *testing.T) {
		drivertest.TestDriver(t, func(*testing.T) microcache.Driver {
			return microcache.NewDriverLRUBytes(100*drivertest.MinRecords, 1<<30)
		})
	})
}
