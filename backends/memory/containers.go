package memory

import "time"

// deque is a ring buffer of items.
type deque struct {
	buf  []*item
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) grow() {
	if d.n < len(d.buf) {
		return
	}
	nb := make([]*item, max(16, 2*len(d.buf)))
	for i := range d.n {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(it *item) {
	d.grow()
	d.buf[(d.head+d.n)%len(d.buf)] = it
	d.n++
}

func (d *deque) pushFront(it *item) {
	d.grow()
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = it
	d.n++
}

func (d *deque) front() *item { return d.buf[d.head] }

func (d *deque) popFront() *item {
	it := d.buf[d.head]
	d.buf[d.head] = nil
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	return it
}

// delayHeap orders delayed items by due time, then enqueue order.
type delayHeap []*item

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if h[i].dueAt.Equal(h[j].dueAt) {
		return h[i].seq < h[j].seq
	}
	return h[i].dueAt.Before(h[j].dueAt)
}
func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *delayHeap) Push(x any) { it := x.(*item); it.heapIdx = len(*h); *h = append(*h, it) }
func (h *delayHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	it.heapIdx = -1
	return it
}

// leaseEntry is one lease deadline; it is stale once the item's receipt or
// deadline changed.
type leaseEntry struct {
	it      *item
	receipt string
	until   time.Time
}

type leaseHeap []leaseEntry

func (h leaseHeap) Len() int           { return len(h) }
func (h leaseHeap) Less(i, j int) bool { return h[i].until.Before(h[j].until) }
func (h leaseHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *leaseHeap) Push(x any)        { *h = append(*h, x.(leaseEntry)) }
func (h *leaseHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = leaseEntry{}
	*h = old[:len(old)-1]
	return e
}

// at returns the i-th item from the front.
func (d *deque) at(i int) *item { return d.buf[(d.head+i)%len(d.buf)] }
