package microcache

import "testing"

// Bodies are kept oldest-first within the budget; a body over a quarter of
// the budget is never kept; a cell is filled once.
func TestHotBodiesBudget(t *testing.T) {
	hb := hotBodies{max: 100}
	cells := make([]*hotBody, 5)
	for i := range cells {
		cells[i] = new(hotBody)
		hb.keep(cells[i], make([]byte, 25))
	}
	// 5 x 25 bytes into 100: the first is dropped.
	if cells[0].Load() != nil {
		t.Error("oldest body kept past the budget")
	}
	for i := 1; i < 5; i++ {
		if cells[i].Load() == nil {
			t.Errorf("body %d dropped within the budget", i)
		}
	}
	if hb.bytes != 100 || len(hb.queue) != 4 {
		t.Errorf("bytes %d, queue %d", hb.bytes, len(hb.queue))
	}
	big := new(hotBody)
	hb.keep(big, make([]byte, 26))
	if big.Load() != nil {
		t.Error("a body over a quarter of the budget was kept")
	}
	first := cells[4].Load()
	hb.keep(cells[4], make([]byte, 1))
	if cells[4].Load() != first || hb.bytes != 100 {
		t.Error("a filled cell was filled again")
	}
}
