// Command schedidle reads a scheduler trace and tells how much of the
// cores' idle time was stranded: a core idle while another core had tasks
// waiting to run. It is how the load balancer's remaining gap to HAProxy
// was traced (README, "Load balancing and apps").
//
// Record with bench-lb.sh, then feed perf script's output:
//
//	sudo PERF=/tmp/ps PERF_ARGS="-a -e sched:sched_switch -e sched:sched_wakeup -e sched:sched_migrate_task" \
//	    MODES=close REPEAT=1 ONLY=1 scripts/bench-lb.sh
//	perf script -i /tmp/ps/close-vmss-internal-1.data -F comm,pid,tid,cpu,time,event,trace | go run ./scripts/schedidle
//
// For each core: its idle share and the stranded part. Then, by process
// (comm:pid): the stranded time during which its threads were queued, how
// often one of its threads went to sleep leaving its core idle while another
// core had a queue, its threads' switches by state (went to sleep, S; were
// preempted, R) and how many of its threads ran at all.
package main
