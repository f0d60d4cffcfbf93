;; lists.scm -- list reversal, append, map, filter and merge sort over long
;; lists, repeated; a long-lived list of 200000 numbers stays alive
;; throughout (old data the collector must keep).

(define (iota n)                        ; (1 2 ... n)
  (let loop ((i n) (acc '()))
    (if (= i 0) acc (loop (- i 1) (cons i acc)))))

(define (reverse l)
  (let loop ((l l) (acc '()))
    (if (null? l) acc (loop (cdr l) (cons (car l) acc)))))

(define (append a b)                    ; recursive: depth = (length a)
  (if (null? a) b (cons (car a) (append (cdr a) b))))

(define (map f l)
  (if (null? l) '() (cons (f (car l)) (map f (cdr l)))))

(define (filter keep? l)
  (cond ((null? l) '())
        ((keep? (car l)) (cons (car l) (filter keep? (cdr l))))
        (else (filter keep? (cdr l)))))

(define (sum l)
  (let loop ((l l) (s 0))
    (if (null? l) s (loop (cdr l) (+ s (car l))))))

;; merge sort: split by alternation, merge iteratively (reverse at the end)
(define (split l a b)
  (if (null? l)
      (cons a b)
      (split (cdr l) (cons (car l) b) a)))

(define (merge a b acc)
  (cond ((null? a) (append (reverse acc) b))
        ((null? b) (append (reverse acc) a))
        ((< (car a) (car b)) (merge (cdr a) b (cons (car a) acc)))
        (else (merge a (cdr b) (cons (car b) acc)))))

(define (msort l)
  (if (or (null? l) (null? (cdr l)))
      l
      (let ((halves (split l '() '())))
        (merge (msort (car halves)) (msort (cdr halves)) '()))))

;; a pseudo-random permutation-ish list (linear congruential)
(define (randoms n seed)
  (let loop ((i 0) (x seed) (acc '()))
    (if (= i n)
        acc
        (loop (+ i 1) (remainder (+ (* x 1103515245) 12345) 2147483648)
              (cons (remainder x 100000) acc)))))

(define (sorted? l)
  (or (null? l) (null? (cdr l))
      (and (<= (car l) (cadr l)) (sorted? (cdr l)))))
(define (cadr l) (car (cdr l)))

(define long-lived (iota 200000))

(define (round-trip k)
  (let loop ((i 0) (acc 0))
    (if (= i k)
        acc
        (let* ((r (reverse long-lived))
               (rr (reverse r))
               (chunk (iota 10000))
               (doubled (map (lambda (x) (* 2 x)) chunk))
               (both (append doubled chunk))
               (odds (filter odd? both)))
          (loop (+ i 1) (+ acc (car r) (car rr) (sum odds) (length both)))))))

(display "round trips: ") (display (round-trip 30)) (newline)

(define (sort-rounds k)
  (let loop ((i 0) (ok #t) (s 0))
    (if (= i k)
        (list ok s)
        (let ((sorted (msort (randoms 20000 (+ i 1)))))
          (loop (+ i 1) (and ok (sorted? sorted)) (+ s (car sorted)))))))

(display "sorts: ") (display (sort-rounds 8)) (newline)
(display "long lived: ") (display (sum long-lived)) (newline)
