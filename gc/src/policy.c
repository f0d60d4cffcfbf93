/* policy.c -- heap sizing: how big new space is, when a full GC runs, and
 * what the defaults of the size flags are (as Whippet's heap sizer).
 *
 * The model, once ("semispace" is new space's capacity, semi_cap: what the
 * survivors and eden's allocation area hold together, nursery.c):
 *   - A scavenge costs what survives it, so new space should be as large as
 *     keeps the survivors few, and no larger (a larger one only delays the
 *     same copying and costs memory).  It starts at SEMI_START (1 MB, V8)
 *     and doubles toward --max-semi-space-size when more bytes survived
 *     since the last resize than a semispace holds (V8's rule: objects that
 *     would die given a little more time) and the collections of that
 *     window (scavenges, and the full GCs that clear what they promoted)
 *     took over 1/SCAVENGE_SHARE_DIV of its time: memory buys time only
 *     where the collector is spending it.  A 10% share lets GCBench and
 *     binary-trees grow as before, and keeps a Lisp building trees at 4 MB
 *     (21 MB peak RSS for 8% more time, against 43 MB at 16 MB); the
 *     closing window is scored and a new one starts, so a cheap phase
 *     long ago does not hide a costly one now.  (Starting at 512 KB gave
 *     the Lisp's deriv 2.6 MB peak RSS instead of 3.6 and trees 16 MB
 *     instead of 21, but GCBench 18% and binary-trees 21 7% more time, 20
 *     and 5 interleaved runs: a builder pays for the small start before
 *     growth catches up.)  It halves after SHRINK_STREAK
 *     scavenges in a row in which under 1/LOW_SURVIVAL_DIV survived.
 *   - When survival is high (over 1/HIGH_SURVIVAL_DIV of what was
 *     allocated) the program is building a structure: growing would copy it
 *     in longer pauses, so size stays; and when nearly all of a well-filled
 *     new space survived through the roots (FAST_PROMOTE_PCT of it, and at
 *     least a quarter of the capacity) the next scavenge promotes every
 *     survivor at once (V8's fast promotion mode).  Only what the roots
 *     reach counts: what survives only through remembered old objects may
 *     be kept by dead ones (nepotism), and promoting it turns its own young
 *     children into more of the same, scavenge after scavenge until a full
 *     GC.  (GCBench's depth-16 trees, built top-down under promoted
 *     parents: counting every survivor kept fast promotion on through the
 *     phase, promoting whole 4 MB edens in 7.6-8.5 ms pauses.  Counting
 *     root survivors only took its wall time 0.160 -> 0.145 s and peak RSS
 *     44.5 -> 42.0 MiB in 10 interleaved runs; binary-trees 21 unchanged,
 *     the same scavenges and promoted bytes.)  Fresh old pages are
 *     prepared ahead on the other core (pageprep.c) once the old
 *     generation holds PREP_MIN_OLD:
 *     a program faults in only what its old generation ever held (freed
 *     pages are pooled), so under 8 MB the faults cost under 3 ms in all
 *     (0.35 ms per MB), while pages prepared and never used are RSS (the
 *     Lisp's closures kept 1.2 MB of them).
 *   - The tenuring age (survivors this old are promoted) is, without
 *     --promotion-age, the first age from which most survivors live
 *     through the next scavenge: an age whose objects mostly die before
 *     it (more than 1/TENURE_SURVIVE_DIV of them, over at least
 *     TENURE_MIN_SAMPLE bytes) is kept young, since promoting them would
 *     only move their death to old space, where a full GC must find it
 *     (Ungar and Jackson's feedback-mediated tenuring; HotSpot adapts its
 *     threshold by survivor-space occupancy instead).  It is 1 (V8's)
 *     while age 1 holds too few bytes to judge, so a small or building
 *     program is promoted as in V8; past age 1, an age too thin to judge
 *     is what is left of a population that mostly died, and is kept young
 *     too (a few KB copied per scavenge, where promoted it would be old
 *     garbage: stopping there instead left /users promoting 100 KB/s).
 *     An age is judged on the bytes seen at it, and of those that
 *     survived, over about the last TENURE_WINDOW scavenges (decaying
 *     sums; at least TENURE_MIN_SAMPLE per scavenge of them), not on one
 *     scavenge's: a server replacing values at a steady rate kills each
 *     age alike (a constant hazard), and the few dozen values left at
 *     ages 4-6 in one scavenge read as "mostly survived" often enough by
 *     chance (/users at 140k req/s: 15% of scavenges stopped at age 4 or
 *     5), promoting 3 MB in 35 s and a full GC in every 30 s run; over
 *     the window, 2.0 MB (the 1000 names) and none.
 *     Measured against promotion at 1: the server's PUT/GET /users for
 *     30 s (runs back to back) promoted 2.9 MB instead of 24.9 (values
 *     replaced after a scavenge or two now die young), with 1-2 full GCs
 *     instead of 7 and 13.1 instead of 16.1 MB peak RSS, the scavenge p99
 *     unchanged within its spread (0.8-1.0 ms); binary-trees 21 (interleaved) promoted 352
 *     MB instead of 369 in the same 7056 scavenges (15% more scavenge
 *     time, the same wall time, 274 MB peak RSS against 279); GCBench and
 *     the four Lisp programs within noise.
 *   - Objects promoted too early are what a too-small new space costs: a
 *     structure larger than a semispace is copied and promoted while it is
 *     built, then dies in old space, where only a full GC finds it.  So
 *     when a full GC finds that at least PREMATURE_DEAD_PCT of what the old
 *     generation gained since the last one is already dead (and that gain
 *     was at least a semispace), new space doubles, capacity and bound,
 *     while the bound is below the reservation: SEMI_GROWTH_RESERVE times
 *     the default bound (16 MB, V8's) when --max-semi-space-size is not
 *     given, at most SEMI_RESERVE_MAX; a given flag is a hard bound (V8
 *     honours it too).  So this rule doubles at most log2
 *     SEMI_GROWTH_RESERVE (2) times in a run; beyond that the capacity
 *     grows only by the window rule, up to the bound.  Measured, not
 *     kept: letting the capacity go on doubling toward the reservation
 *     took the Lisp's trees and lists to 16 and 64 MB of new space (35 and
 *     110 MB peak RSS instead of 20 and 47; lists 27% faster, trees the
 *     same time); with a GC-time share as a condition (1/3 to 1/5) trees
 *     still grew.
 *   - The old generation is collected when its size (what the last mark
 *     found live, plus what was promoted or allocated there since) reaches
 *     the live size times a growth factor chosen, as V8's heap controller
 *     does, so that full GCs take about 1/FULL_SHARE_DIV of the time: with
 *     the last full GC's marking speed G (live bytes per ms) and the rate
 *     P at which the old generation gained bytes between the last two
 *     (per ms of mutator time), a factor f spends L/G marking per
 *     (f - 1) L / P of running, so f = 1 + (FULL_SHARE_DIV - 1) P / G,
 *     between GROWTH_MIN and GROWTH_MAX (V8's 1.1 and 4).  A program that
 *     promotes little next to what it keeps is collected at a small
 *     multiple of its live size (the Lisp's closures: 16 MB peak RSS, 42 MB
 *     with the fixed 2x over a 32 MB floor); one building a large structure
 *     fast gets up to 4x.  At least HEADROOM_MIN or a semispace above the
 *     live size, at most the limit.  The first full GC, before any speed is
 *     known, comes at FIRST_FULL_AT.  Both bounds trade a builder's time
 *     for a small program's memory, and were measured on GCBench (30
 *     interleaved runs each): 1 MB above the live size and a first full GC
 *     at 4 MB made it 14% slower (7 full GCs: a quiet phase measures a low
 *     P, and the building phase after it pays a full GC every few MB); 4
 *     and 8 MB, 3 full GCs and the time of the fixed 2x within the noise
 *     (the closures then peak at 16 MB instead of 10).  Beyond twice the
 *     live size the step is at most GROWTH_BEYOND_2X_MAX: the step taken
 *     while a large structure is still growing is overshoot, paid in RSS
 *     (binary-trees 21 went 10, 37, 145 MB live, then 4x to 592 MB before
 *     its next full GC: 674 MB peak RSS; with 32 MB beyond 2x, 436 MB; the
 *     fixed 2x over a 32 MB floor happened to land at 370).  A factor of
 *     at most 2 everywhere gives binary-trees its 370 MB back but GCBench
 *     10 full GCs instead of 3.
 *   - The limit above is where a full GC must run; one runs before it when
 *     it is cheap: when, at the pace the last full GC went through the old
 *     generation (the dead included; MARK_SPEED_GUESS before the first),
 *     collecting all of it now would take under 1/CHEAP_SHARE_DIV of the
 *     mutator time since the last one, and the old generation gained at
 *     least CHEAP_MIN_GAIN, a semispace and 1/CHEAP_GAIN_DIV of its live
 *     size since.  A program that promotes slowly, or promotes garbage that
 *     marks in no time, keeps a small old generation; one that builds a
 *     large live structure fast never passes the test and is sized by the
 *     factor alone.  At least a semispace, so that what such a GC finds
 *     dead still counts as premature promotion (above) and new space grows
 *     where objects die just after promotion: a server replacing values of
 *     a steady working set keeps them in new space (PUT/GET /users for
 *     30 s: 6 full GCs and 19.5 MB peak RSS, as without the rule, 6 and
 *     22.8 MB; with a 1 MB bound, which kept new space at 1 MB, 232 full
 *     GCs and 10 MB).
 *     Half the live size, so that a large heap, whose full GCs are long
 *     pauses, is not collected more often than a growth factor of 1.5
 *     would.  Measured against the factor alone, interleaved: the Lisp's
 *     closures 8.3 MB peak RSS instead of 15.3, binary-trees 21 311 MB
 *     instead of 426 (its long-lived tree sits through a quiet phase),
 *     GCBench the same 2 full GCs.  A fiftieth fired late (closures' first
 *     at 4.5 MB), and lowering HEADROOM_MIN to 2 MB beside it cost the
 *     trees program ~10% more time (3 interleaved runs each).
 *     Committed bytes
 *     would be the wrong measure of the old generation's size: lazy
 *     sweeping leaves dead cells counted until their page is swept.
 *   - Off-heap memory reported by gc_external_adjust asks for a full GC when
 *     it grew, since the last one, by more than the larger of
 *     EXTERNAL_MIN_STEP and the old generation's size.
 *   - After each scavenge SWEEP_PER_SCAVENGE pending old pages are swept, so
 *     that little is left for the next full GC's pause.
 */
#include "gc_internal.h"

#define SEMI_START GC__MB
#define SEMI_MIN_FLAG ((size_t)64 * 1024)
#define SEMI_MAX_FLAG ((size_t)1024 * GC__MB)
#define SEMI_DEFAULT_MIN GC__MB
#define SEMI_DEFAULT_MAX ((size_t)16 * GC__MB)
#define SEMI_DEFAULT_DIV 16 /* default max semispace: max old / 16 */
#define HIGH_SURVIVAL_DIV 8
#define LOW_SURVIVAL_DIV 64
#define SCAVENGE_SHARE_DIV 10
#define SHRINK_STREAK 8
#define FAST_PROMOTE_PCT 80
#define TENURE_SURVIVE_DIV 2
#define TENURE_MIN_SAMPLE ((size_t)4096) /* bytes per scavenge */
#define TENURE_WINDOW 4                  /* scavenges the evidence spans */
#define FULL_SHARE_DIV 10
#define GROWTH_MIN 1.1
#define GROWTH_MAX 4.0
#define HEADROOM_MIN ((size_t)4 * GC__MB)
#define GROWTH_BEYOND_2X_MAX ((size_t)32 * GC__MB)
#define FIRST_FULL_AT ((size_t)8 * GC__MB)
#define CHEAP_SHARE_DIV 20
#define CHEAP_MIN_GAIN GC__MB
#define CHEAP_GAIN_DIV 2
#define MARK_SPEED_GUESS ((double)GC__MB) /* bytes per ms: 1 GB/s */
#define DEFAULT_OLD_MB 4096
#define EXTERNAL_MIN_STEP ((int64_t)64 * (int64_t)GC__MB)
#define SWEEP_PER_SCAVENGE 8
#define PREP_MIN_OLD FIRST_FULL_AT
#define PREMATURE_DEAD_PCT 75
#define SEMI_GROWTH_RESERVE 4
#define SEMI_RESERVE_MAX ((size_t)64 * GC__MB)

static size_t clamp(size_t v, size_t lo, size_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

static size_t pow2_floor(size_t v) {
  size_t p = 1;
  while (p * 2 <= v)
    p *= 2;
  return p;
}

int gc__policy_defaults(gc_options_t *opt, size_t *semi_reserve) {
  if (opt->promotion_age > X__MAX_AGE)
    return -EINVAL;
  if (opt->max_old_space_size == 0)
    opt->max_old_space_size = (size_t)DEFAULT_OLD_MB * GC__MB;
  /* Like V8, a smaller old generation gets a smaller new space. */
  bool given = opt->max_semi_space_size != 0;
  if (!given)
    opt->max_semi_space_size =
        clamp(pow2_floor(opt->max_old_space_size / SEMI_DEFAULT_DIV),
              SEMI_DEFAULT_MIN, SEMI_DEFAULT_MAX);
  opt->max_semi_space_size =
      clamp(opt->max_semi_space_size, SEMI_MIN_FLAG, SEMI_MAX_FLAG);
  /* A semispace is a whole number of pages. */
  opt->max_semi_space_size =
      (opt->max_semi_space_size + GC__PAGE_SIZE - 1) & ~(GC__PAGE_SIZE - 1);
  if (opt->min_semi_space_size == 0)
    opt->min_semi_space_size = SEMI_START;
  if (opt->min_semi_space_size > opt->max_semi_space_size)
    opt->min_semi_space_size = opt->max_semi_space_size;
  opt->min_semi_space_size = gc__round(opt->min_semi_space_size);
  /* Room to grow on premature promotion (address space only: the
   * reservation is not committed), unless the bound was given. */
  size_t reserve = opt->max_semi_space_size;
  if (!given) {
    size_t grown = reserve * SEMI_GROWTH_RESERVE;
    reserve = grown < SEMI_RESERVE_MAX ? grown : SEMI_RESERVE_MAX;
    if (reserve < opt->max_semi_space_size)
      reserve = opt->max_semi_space_size;
  }
  *semi_reserve = reserve;
  return 0;
}

void gc__policy_init(gc_heap_t *h) {
  h->next_full_at = FIRST_FULL_AT < h->limit ? FIRST_FULL_AT : h->limit;
  h->full_mark_end_ms = h->start_ms;
  h->mark_speed = MARK_SPEED_GUESS;
  h->tenure_age =
      h->opt.promotion_age < 0 ? 1 : (unsigned)h->opt.promotion_age;
}

void gc__policy_tenure(gc_heap_t *h, const size_t *survived_by_age,
                       const size_t *copied_to_age) {
  if (h->opt.promotion_age < 0) {
    /* No evidence at age 1: V8's 1.  Past it, an age that mostly died, or
     * that holds too few bytes to judge (what is left of a population
     * that thinned out: cheap to copy, and promoted it would be old
     * garbage), is kept young.  The evidence: this scavenge's bytes at
     * risk (what the last one left at each age) and survived, added to
     * the decaying sums, which settle at TENURE_WINDOW times a steady
     * scavenge's. */
    size_t *seen = h->tenure_seen, *kept = h->tenure_survived;
    for (unsigned a = 0; a <= X__MAX_AGE; a++) {
      seen[a] += h->young_by_age[a] - seen[a] / TENURE_WINDOW;
      kept[a] += survived_by_age[a] - kept[a] / TENURE_WINDOW;
    }
    const size_t enough = TENURE_MIN_SAMPLE * TENURE_WINDOW;
    unsigned t = 1;
    if (seen[1] >= enough)
      while (t < X__MAX_AGE &&
             (seen[t] < enough || kept[t] * TENURE_SURVIVE_DIV <= seen[t]))
        t++;
    h->tenure_age = t;
  }
  for (unsigned a = 0; a <= X__MAX_AGE; a++)
    h->young_by_age[a] = copied_to_age[a];
}

static size_t old_size(const gc_heap_t *h) {
  return h->old_live + h->old_since_full;
}

/* Whether a full GC now would cost under 1/CHEAP_SHARE_DIV of the mutator
 * time since the last one (the old generation at the pace the last full GC
 * went through its own), after it gained at least CHEAP_MIN_GAIN and
 * 1/CHEAP_GAIN_DIV of the live size. */
static bool full_cheap(const gc_heap_t *h, double now) {
  if (h->old_since_full < CHEAP_MIN_GAIN ||
      h->old_since_full < h->semi_cap ||
      h->old_since_full < h->old_live / CHEAP_GAIN_DIV)
    return false;
  double mutator_ms = (now - h->full_mark_end_ms) - h->gc_ms_since_full;
  return (double)old_size(h) / h->mark_speed * CHEAP_SHARE_DIV < mutator_ms;
}

/* Whether scavenges since the last resize took more than
 * 1/SCAVENGE_SHARE_DIV of the time: only then is the memory of a larger new
 * space worth spending. */
static bool scavenges_costly(const gc_heap_t *h, double now) {
  return h->scavenge_ms_since_resize * SCAVENGE_SHARE_DIV >
         now - h->resized_at_ms;
}

static void resized(gc_heap_t *h, double now) {
  h->survived_since_resize = 0;
  h->low_survival_streak = 0;
  h->resized_at_ms = now;
  h->scavenge_ms_since_resize = 0;
}

size_t gc__policy_semi_after_scavenge(gc_heap_t *h, size_t used,
                                      size_t survived, size_t from_roots) {
  size_t cap = h->semi_cap;
  double now = gc__now_ms();
  /* This collection's pause so far; a full GC's marking is in it, and is
   * counted toward the window (it clears what scavenges promoted) but not
   * again toward the old generation's GC time (after_full took it). */
  h->scavenge_ms_since_resize += now - h->cycle_t0;
  h->gc_ms_since_full +=
      now -
      (h->cycle_t0 > h->full_mark_end_ms ? h->cycle_t0 : h->full_mark_end_ms);
  if (used == 0)
    return cap;
  if (survived * HIGH_SURVIVAL_DIV > used) {
    /* A structure being built: fast promotion (below) handles it, and it
     * does not count toward growth. */
    h->survived_since_resize = 0;
    h->low_survival_streak = 0;
  } else if (cap < h->semi_max &&
             (h->survived_since_resize += survived) > cap) {
    /* A window closes: grow if its scavenges were costly; either way the
     * next window starts now. */
    if (scavenges_costly(h, now))
      cap = cap * 2 < h->semi_max ? cap * 2 : h->semi_max;
    resized(h, now);
  } else if (survived * LOW_SURVIVAL_DIV < used) {
    if (++h->low_survival_streak >= SHRINK_STREAK && cap > h->semi_min) {
      cap = cap / 2 > h->semi_min ? cap / 2 : h->semi_min;
      resized(h, now);
    }
  } else {
    h->low_survival_streak = 0;
  }
  h->fast_promotion = from_roots * 100 > used * FAST_PROMOTE_PCT &&
                      from_roots >= h->semi_cap / 4;
  /* The next scavenge will promote about a semispace: have that much in
   * fresh pages prepared off the mutator thread, beyond what the pool
   * holds. */
  if (h->fast_promotion && old_size(h) >= PREP_MIN_OLD &&
      h->pool_len * GC__PAGE_SIZE < cap)
    gc__prep_request(h, cap - h->pool_len * GC__PAGE_SIZE);
  h->full_cheap = full_cheap(h, now);
  return cap;
}

bool gc__policy_full_due(const gc_heap_t *h, size_t more) {
  return h->full_requested || h->full_cheap ||
         old_size(h) + more >= h->next_full_at;
}

void gc__policy_after_full(gc_heap_t *h) {
  /* What the old generation gained since the last full GC, and how much of
   * all of it (gain included) the mark found dead. */
  size_t before = h->old_live + h->old_since_full;
  size_t dead = before > h->marked_bytes ? before - h->marked_bytes : 0;
  if (h->old_since_full >= h->semi_cap &&
      dead * 100 >= h->old_since_full * PREMATURE_DEAD_PCT &&
      h->semi_max < h->semi_reserve) {
    h->semi_max =
        h->semi_max * 2 < h->semi_reserve ? h->semi_max * 2 : h->semi_reserve;
    h->semi_cap = h->semi_cap * 2 < h->semi_max ? h->semi_cap * 2 : h->semi_max;
  }
  h->full_requested = false;
  h->full_cheap = false;
  h->external_at_full = h->external;
  /* The speeds of the interval that just ended (see the model above). */
  double now = gc__now_ms();
  double mark_ms = now - h->cycle_t0;
  double mutator_ms = (h->cycle_t0 - h->full_mark_end_ms) - h->gc_ms_since_full;
  double f = GROWTH_MAX;
  if (mutator_ms > 0 && h->marked_bytes > 0) {
    double promote_rate = (double)h->old_since_full / mutator_ms;
    double mark_speed =
        (double)h->marked_bytes / (mark_ms > 0.001 ? mark_ms : 0.001);
    f = 1 + (FULL_SHARE_DIV - 1) * promote_rate / mark_speed;
    f = f < GROWTH_MIN ? GROWTH_MIN : f > GROWTH_MAX ? GROWTH_MAX : f;
  }
  /* What the next cheap-GC test (full_cheap) assumes: this mark's pace
   * over the whole old generation, the dead included. */
  if (before > 0)
    h->mark_speed = (double)before / (mark_ms > 0.001 ? mark_ms : 0.001);
  h->full_mark_end_ms = now;
  h->gc_ms_since_full = 0;
  h->old_live = h->marked_bytes;
  h->old_since_full = 0;
  size_t room = h->semi_cap > HEADROOM_MIN ? h->semi_cap : HEADROOM_MIN;
  size_t next = (size_t)((double)h->old_live * f);
  size_t cap = h->old_live * 2 + GROWTH_BEYOND_2X_MAX;
  if (next > cap)
    next = cap;
  if (next < h->old_live + room)
    next = h->old_live + room;
  h->next_full_at = next < h->limit ? next : h->limit;
}

void gc__policy_limit_raised(gc_heap_t *h) {
  if (h->next_full_at < h->limit)
    h->next_full_at = h->limit;
}

void gc__policy_external(gc_heap_t *h) {
  int64_t grown = h->external - h->external_at_full;
  int64_t step = (int64_t)(h->old_used + h->large_bytes);
  if (step < EXTERNAL_MIN_STEP)
    step = EXTERNAL_MIN_STEP;
  if (grown > step && !h->in_gc) {
    h->full_requested = true;
    h->fast.limit = h->fast.top; /* take the slow path next time */
  }
}

size_t gc__policy_sweep_quota(const gc_heap_t *h) {
  (void)h;
  return SWEEP_PER_SCAVENGE;
}
