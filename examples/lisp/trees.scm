;; trees.scm -- binary trees as cons cells (the Benchmarks Game workload,
;; as examples/binarytrees.c): a stretch tree of depth N+1, a long-lived
;; tree of depth N, then 2^(N-d+4) trees of depth d for d = 4, 6, ..., N,
;; each built, counted and dropped.  A node is (left . right); a leaf is
;; (() . ()).  Prints the lines binarytrees prints.

(define max-depth 16)

(define (make-tree d)
  (if (= d 0)
      (cons '() '())
      (cons (make-tree (- d 1)) (make-tree (- d 1)))))

(define (check t)
  (if (null? (car t))
      1
      (+ 1 (check (car t)) (check (cdr t)))))

(define (expt2 n) (if (= n 0) 1 (* 2 (expt2 (- n 1)))))

(define (report count what depth check)
  (display count) (display what) (display depth)
  (display "\t check: ") (display check) (newline))

(let ((stretch (+ max-depth 1)))
  (report "" "stretch tree of depth " stretch (check (make-tree stretch))))

(define long-lived (make-tree max-depth))

(define (iterate d)
  (let ((n (expt2 (+ (- max-depth d) 4))))
    (let loop ((i 0) (sum 0))
      (if (= i n)
          (report n "\t trees of depth " d sum)
          (loop (+ i 1) (+ sum (check (make-tree d))))))))

(let loop ((d 4))
  (when (<= d max-depth)
    (iterate d)
    (loop (+ d 2))))

(report "" "long lived tree of depth " max-depth (check long-lived))
