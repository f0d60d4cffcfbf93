;; closures.scm -- building and calling many closures: counter generators,
;; Church numerals, a fold in continuation-passing style, composed
;; functions.

;; counters: a list of 1000 counters, each bumped round-robin
(define (make-counter start)
  (let ((n start))
    (lambda () (set! n (+ n 1)) n)))

(define (make-counters k)
  (let loop ((i 0) (acc '()))
    (if (= i k) acc (loop (+ i 1) (cons (make-counter i) acc)))))

(define (bump-all cs)
  (let loop ((cs cs) (s 0))
    (if (null? cs) s (loop (cdr cs) (+ s ((car cs)))))))

(define (counter-rounds rounds)
  (let loop ((r 0) (cs (make-counters 1000)) (total 0))
    (if (= r rounds)
        total
        (loop (+ r 1)
              (if (= (remainder r 50) 0) (make-counters 1000) cs)
              (+ total (bump-all cs))))))

(display "counters: ") (display (counter-rounds 2000)) (newline)

;; Church numerals
(define zero (lambda (f) (lambda (x) x)))
(define (succ n) (lambda (f) (lambda (x) (f ((n f) x)))))
(define (add a b) (lambda (f) (lambda (x) ((a f) ((b f) x)))))
(define (mul a b) (lambda (f) (a (b f))))
(define (church k) (if (= k 0) zero (succ (church (- k 1)))))
(define (unchurch n) ((n (lambda (x) (+ x 1))) 0))

(define (church-rounds k)
  (let loop ((i 0) (s 0))
    (if (= i k)
        s
        (let ((a (church (remainder i 30)))
              (b (church 20)))
          (loop (+ i 1) (+ s (unchurch (add (mul a b) b))))))))

(display "church: ") (display (church-rounds 20000)) (newline)

;; fold-right in continuation-passing style: every element adds a closure
(define (fold-k f acc l k)
  (if (null? l)
      (k acc)
      (fold-k f acc (cdr l) (lambda (r) (k (f (car l) r))))))

(define (iota n)
  (let loop ((i n) (acc '()))
    (if (= i 0) acc (loop (- i 1) (cons i acc)))))

(define (cps-rounds k)
  (let ((l (iota 10000)))
    (let loop ((i 0) (s 0))
      (if (= i k)
          s
          (loop (+ i 1)
                (+ s (fold-k (lambda (x r) (+ x r)) i l (lambda (r) r))))))))

(display "cps fold: ") (display (cps-rounds 300)) (newline)

;; composition: a chain of 100 adders, applied many times
(define (compose f g) (lambda (x) (f (g x))))
(define (adder n) (lambda (x) (+ x n)))
(define (chain k)
  (let loop ((i 0) (f (lambda (x) x)))
    (if (= i k) f (loop (+ i 1) (compose (adder i) f)))))

(define (compose-rounds k)
  (let loop ((i 0) (s 0))
    (if (= i k) s (loop (+ i 1) (+ s ((chain 100) i))))))

(display "compose: ") (display (compose-rounds 15000)) (newline)
