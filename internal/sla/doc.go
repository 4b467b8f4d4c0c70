// Package sla is the scheduler's policy: the order in which the queued jobs
// of one model are dispatched to its workers so that as many jobs as possible
// finish inside their tier's deadline, above all when the fleet is
// overloaded. It is pure: no I/O, no goroutines, no clock (every call takes
// now), so the same code runs in the scheduler and in the simulator of this
// package.
//
// # Use
//
// The scheduler keeps one Policy per model. It Pushes every submitted job,
// Removes cancelled ones, and Pops only when a worker has room (late
// dispatch), so the order is decided as late as possible. It calls
// SetCapacity whenever the workers' announced throughput changes, reads
// Stats for its per-tier metrics, and answers admission with
// (*Deadline).ExpectedWait. A finished job met its deadline if its result
// was recorded by Job.Deadline; the policy does not need to be told.
//
// New returns inferq's policy, *Deadline. NewFIFO, NewStrictPriority and
// NewEDF are the baselines it is compared with.
//
// # The algorithm
//
// Each tier has two queues: live jobs, by deadline (earliest first), and
// late jobs. With C the model's capacity (jobs/s at full batches) and L the
// dispatch-to-result latency, both from SetCapacity:
//
//   - A job is hopeless when it cannot finish by its deadline: at Push, if
//     even the whole fleet, serving the live jobs of its tier ahead of it
//     first, would start it too late (now + ahead/C + L > deadline); at Pop,
//     if its tier's head can no longer finish (now + L > deadline). A
//     hopeless job moves to its tier's late queue for good: it still runs,
//     and is recorded late, but behind every job that can still make it, so
//     that it does not make them late too.
//   - Guaranteed shares. A tier is urgent when, served only at its
//     guaranteed share of C from now, its live backlog would outlast its
//     head's slack. An urgent tier earns its share of every dispatch as
//     credit and a tier with a whole credit is served first (the one owed
//     most), so over any stretch an urgent tier gets at least its share. A
//     tier that is not urgent earns nothing: its share is lent.
//   - Lending. Dispatches nobody is owed go to the live head of the
//     highest-priority tier that has one (tiers are listed by priority).
//   - Age bound. A late job that has waited AgeFactor times its own deadline
//     is aged; aged jobs take up to AgedShare of dispatches ahead of
//     everything else, oldest first. Live jobs cannot starve (a job whose
//     deadline passes becomes late), so this bounds every job's wait even
//     under sustained overload, at a cost of at most AgedShare of goodput.
//   - When nothing live is queued, aged jobs run, then late ones by tier
//     priority.
//
// Each Push, Pop and Remove is O(log n) heap work plus O(tiers); a job is
// demoted at most once. Stats is O(tiers).
//
// # Why it beats the baselines under overload
//
// With more work than capacity, somebody misses; what matters is who, and
// whether the misses spread.
//
//   - FIFO serves in arrival order: a bulk upload buries every premium job
//     behind it, and at 1.5x load the queue's wait grows until every tier
//     with a short deadline misses everything.
//   - Strict priority keeps premium safe but gives lower tiers only what is
//     left, and serves them first-in-first-out: once bulk's backlog is older
//     than its deadline every bulk job it serves is late, so bulk's
//     attainment goes to zero while its capacity is spent on jobs that were
//     already lost. In bursts, standard jobs are served in arrival order past
//     their deadlines, making the next ones late as well.
//   - Plain EDF is optimal while everything fits and collapses when it does
//     not: jobs that are already overdue have the earliest deadlines, so they
//     are served first, and every job becomes late in turn; a bulk job an
//     hour old outranks a fresh premium job.
//
// This policy keeps EDF's order where it helps (within a tier, among jobs
// that can still make it), takes the overdue jobs out of the way (no
// domino), protects premium by priority and every tier by its share, and
// lets tiers with slack (bulk, with an hour) lend their share to tiers in a
// hurry. In the simulator at 1.5x load (20 % premium, 30 % standard, 50 %
// bulk) premium and standard meet 100 % of deadlines and bulk 83 %, against
// strict priority's 25 % for bulk; goodput is 1.5x strict priority's and
// 1.8x FIFO's and EDF's.
//
// # The simulator
//
// Simulate runs a Scenario (fleet, batch cost, arrival streams, seed) with
// any Policy: a discrete-event run where each free worker Pops up to
// MaxBatch jobs and takes BatchBase + n*PerJob for a batch of n, arrivals
// stop after Duration and the queue drains, so every job ends met or late.
// StandardScenarios are the benchmark traces (steady 0.8x and 1.5x, bursty,
// a 100,000-job bulk upload on a premium stream); Compare runs them against
// Contenders and Markdown renders the table.
package sla
