package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/api"
	"github.com/gantry-project/gantry/api/framework"
)

// The work queue's scheduler. The SDK calls its methods on one goroutine,
// so it needs no locks.

type itemState int

const (
	pending  itemState = iota // to launch
	unsure                    // the launch call failed: launched or not, reconciliation says
	launched                  // placed, not yet running
	running
	finished
	failed // for good: out of retries
)

// item is one command: its current attempt is task "cmd-<index>-<attempt>".
type item struct {
	index   int
	cmd     string
	attempt int
	state   itemState
}

func (it *item) taskID() string { return fmt.Sprintf("cmd-%d-%d", it.index, it.attempt) }

// parseTaskID reads "cmd-<index>-<attempt>".
func parseTaskID(id string) (index, attempt int, ok bool) {
	parts := strings.Split(id, "-")
	if len(parts) != 3 || parts[0] != "cmd" {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(parts[1])
	a, err2 := strconv.Atoi(parts[2])
	return i, a, err1 == nil && err2 == nil
}

type queue struct {
	framework.Base
	items   []*item
	ask     api.Resources
	retries int
	state   string // file keeping the framework ID
	keep    bool

	ready      bool            // reconciled since the last subscription
	reconciled map[string]bool // task IDs whose reconciliation answer is awaited
	suppressed bool
	done       chan struct{}
	closed     bool
}

func newQueue(cmds []string, ask api.Resources, retries int, state string, keep bool) *queue {
	q := &queue{ask: ask, retries: retries, state: state, keep: keep, done: make(chan struct{})}
	for i, c := range cmds {
		q.items = append(q.items, &item{index: i, cmd: c})
	}
	return q
}

// Subscribed keeps the framework's ID, then reconciles every task it may
// have launched (every attempt of every command): nothing is launched
// until the cluster has answered for all of them, so a restarted
// framework never runs a command twice.
func (q *queue) Subscribed(ctx context.Context, d *framework.Driver) {
	if q.state != "" {
		if err := writeFileAtomic(q.state, d.FrameworkID()+"\n"); err != nil {
			fmt.Fprintln(os.Stderr, "workqueue: keeping the framework ID:", err)
		}
	}
	fmt.Printf("subscribed as %s\n", d.FrameworkID())
	q.ready, q.suppressed = false, false
	q.reconciled = map[string]bool{}
	var ids []string
	for _, it := range q.items {
		for a := 0; a <= q.retries; a++ {
			id := fmt.Sprintf("cmd-%d-%d", it.index, a)
			ids = append(ids, id)
			q.reconciled[id] = true
		}
	}
	if err := d.Reconcile(ctx, ids...); err != nil {
		fmt.Fprintln(os.Stderr, "workqueue: reconcile:", err)
	}
}

// Offers packs pending commands onto the offers; offers it cannot use are
// declined with a filter, and once nothing is pending it suppresses
// offers altogether.
func (q *queue) Offers(ctx context.Context, d *framework.Driver, offers []api.Offer) {
	for _, o := range offers {
		var tasks []api.TaskInfo
		var its []*item
		left := o.Resources
		for _, it := range q.items {
			if !q.ready || it.state != pending {
				continue
			}
			if ok, _ := left.Fits(q.ask); !ok {
				break
			}
			left = left.Sub(q.ask)
			tasks = append(tasks, api.TaskInfo{
				TaskID: it.taskID(), Name: fmt.Sprintf("command %d", it.index), Resources: q.ask,
				Driver: "exec", Config: map[string]any{"command": "/bin/sh", "args": []string{"-c", it.cmd}},
				Env: map[string]string{"WORKQUEUE_INDEX": strconv.Itoa(it.index), "WORKQUEUE_ATTEMPT": strconv.Itoa(it.attempt)},
			})
			its = append(its, it)
		}
		if len(tasks) == 0 {
			refuse := 5 * time.Second
			if q.ready {
				refuse = time.Minute
			}
			_ = d.Decline(ctx, []string{o.ID}, refuse)
			continue
		}
		for _, it := range its {
			it.state = launched
		}
		statuses, err := d.Launch(ctx, o, tasks, time.Second)
		if err != nil {
			// The answer is lost, not the launch: the tasks may be
			// running (the leader committed them and died). Ask, rather
			// than launch them again under new IDs.
			fmt.Fprintln(os.Stderr, "workqueue: launch:", err)
			var ids []string
			for _, it := range its {
				it.state = unsure
				q.reconciled[it.taskID()] = true
				ids = append(ids, it.taskID())
			}
			_ = d.Reconcile(ctx, ids...)
			continue
		}
		for _, st := range statuses {
			fmt.Printf("task %s %s on %s %s\n", st.TaskID, st.State, o.Hostname, st.Message)
			if st.State != "TASK_STAGING" {
				q.failedAttempt(st.TaskID)
			}
		}
	}
	q.suppressIfIdle(ctx, d)
}

// Update follows the tasks: reconciliation answers first, then the
// tasks' own updates.
func (q *queue) Update(ctx context.Context, d *framework.Driver, st api.TaskStatus) {
	index, attempt, ok := parseTaskID(st.TaskID)
	if !ok || index >= len(q.items) {
		return
	}
	it := q.items[index]
	if st.Reason == "reconciliation" && q.reconciled[st.TaskID] {
		delete(q.reconciled, st.TaskID)
		switch {
		case st.State != "TASK_UNKNOWN" && attempt >= it.attempt:
			it.attempt = attempt
			it.state = stateOf(st.State)
		case it.state == unsure && attempt == it.attempt:
			it.state = pending // never launched
		}
		if q.ready {
			if it.state == failed {
				it.state = pending
				q.failedAttempt(it.taskID())
			}
			if it.state == pending {
				_ = d.Revive(ctx)
				q.suppressed = false
			}
			return
		}
		if len(q.reconciled) == 0 {
			q.ready = true
			for _, it := range q.items {
				switch it.state {
				case failed: // its last attempt failed: retry?
					it.state = pending
					q.failedAttempt(it.taskID())
				case unsure:
					it.state = pending
				}
			}
			fmt.Printf("reconciled: %s\n", q.progress())
			_ = d.Revive(ctx)
			q.suppressed = false
			q.checkDone(ctx, d)
		}
		return
	}
	if st.TaskID != it.taskID() || it.state == finished || it.state == failed {
		return // an older attempt, or news of a task already settled
	}
	fmt.Printf("task %s %s %s\n", st.TaskID, st.State, st.Message)
	switch s := stateOf(st.State); s {
	case failed:
		q.failedAttempt(st.TaskID)
		if it.state == pending {
			_ = d.Revive(ctx)
			q.suppressed = false
		}
	default:
		it.state = s
	}
	q.checkDone(ctx, d)
}

// stateOf maps a task state to an item state (failed: this attempt).
func stateOf(s api.FrameworkTaskState) itemState {
	switch s {
	case "TASK_STAGING":
		return launched
	case "TASK_RUNNING", "TASK_KILLING":
		return running
	case "TASK_FINISHED":
		return finished
	}
	return failed
}

// failedAttempt moves a command to its next attempt, or fails it for good.
func (q *queue) failedAttempt(taskID string) {
	index, attempt, ok := parseTaskID(taskID)
	if !ok || index >= len(q.items) {
		return
	}
	it := q.items[index]
	if attempt != it.attempt {
		return
	}
	if it.attempt < q.retries {
		it.attempt++
		it.state = pending
		return
	}
	it.state = failed
}

func (q *queue) suppressIfIdle(ctx context.Context, d *framework.Driver) {
	if !q.ready || q.suppressed {
		return
	}
	for _, it := range q.items {
		if it.state == pending {
			return
		}
	}
	if d.Suppress(ctx) == nil {
		q.suppressed = true
	}
}

// checkDone ends the run once every command finished or failed: the
// framework tears itself down (its tasks are all over) unless told to
// keep running.
func (q *queue) checkDone(ctx context.Context, d *framework.Driver) {
	if q.closed || !q.ready {
		return
	}
	for _, it := range q.items {
		if it.state != finished && it.state != failed {
			return
		}
	}
	fmt.Printf("all commands done: %s\n", q.progress())
	if !q.keep {
		if err := d.Teardown(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "workqueue: teardown:", err)
		}
		if q.state != "" {
			_ = os.Remove(q.state)
		}
		q.closed = true
		close(q.done)
	}
}

func (q *queue) summary() (finishedN, failedN int) {
	for _, it := range q.items {
		switch it.state {
		case finished:
			finishedN++
		case failed:
			failedN++
		}
	}
	return finishedN, failedN
}

func (q *queue) progress() string {
	counts := map[itemState]int{}
	for _, it := range q.items {
		counts[it.state]++
	}
	return fmt.Sprintf("%d pending, %d launched, %d running, %d finished, %d failed",
		counts[pending]+counts[unsure], counts[launched], counts[running], counts[finished], counts[failed])
}

// writeFileAtomic replaces path with data (a rename, so a crash leaves the
// old ID or the new one, never half a file).
func writeFileAtomic(path, data string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".workqueue-*")
	if err != nil {
		return err
	}
	if _, err := tmp.WriteString(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
