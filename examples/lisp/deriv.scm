;; deriv.scm -- symbolic differentiation (after Gabriel's deriv benchmark)
;; and a simplifier: every step conses new expression trees.

(define (cadr l) (car (cdr l)))
(define (caddr l) (car (cdr (cdr l))))

(define (map f l)
  (if (null? l) '() (cons (f (car l)) (map f (cdr l)))))

(define (deriv a)
  (cond ((not (pair? a)) (if (eq? a 'x) 1 0))
        ((eq? (car a) '+) (cons '+ (map deriv (cdr a))))
        ((eq? (car a) '-) (cons '- (map deriv (cdr a))))
        ((eq? (car a) '*)
         (list '* a (cons '+ (map (lambda (a) (list '/ (deriv a) a)) (cdr a)))))
        ((eq? (car a) '/)
         (list '-
               (list '/ (deriv (cadr a)) (caddr a))
               (list '/ (cadr a)
                     (list '* (caddr a) (caddr a) (deriv (caddr a))))))
        (else (error "deriv: no method for" (car a)))))

;; simplify: fold constants, drop 0 terms and 1 factors
(define (simplify e)
  (if (not (pair? e))
      e
      (let ((op (car e)) (args (map simplify (cdr e))))
        (cond ((eq? op '+) (simplify-sum args))
              ((eq? op '*) (simplify-product args))
              ((eq? op '/) (simplify-quotient args))
              ((eq? op '-) (simplify-difference args))
              (else (cons op args))))))

(define (simplify-quotient args)        ; (/ n d)
  (cond ((eq? (car args) 0) 0)
        ((eq? (cadr args) 1) (car args))
        (else (cons '/ args))))

(define (simplify-difference args)      ; (- a b)
  (cond ((eq? (cadr args) 0) (car args))
        ((and (number? (car args)) (number? (cadr args)))
         (- (car args) (cadr args)))
        (else (cons '- args))))

(define (split-numbers args k)          ; k: (numbers others)
  (cond ((null? args) (k '() '()))
        ((number? (car args))
         (split-numbers (cdr args)
                        (lambda (ns os) (k (cons (car args) ns) os))))
        (else
         (split-numbers (cdr args)
                        (lambda (ns os) (k ns (cons (car args) os)))))))

(define (fold f acc l) (if (null? l) acc (fold f (f acc (car l)) (cdr l))))

(define (simplify-sum args)
  (split-numbers args
    (lambda (ns os)
      (let ((c (fold + 0 ns)))
        (let ((terms (if (= c 0) os (cons c os))))
          (cond ((null? terms) 0)
                ((null? (cdr terms)) (car terms))
                (else (cons '+ terms))))))))

(define (simplify-product args)
  (split-numbers args
    (lambda (ns os)
      (let ((c (fold * 1 ns)))
        (cond ((= c 0) 0)
              (else
               (let ((factors (if (= c 1) os (cons c os))))
                 (cond ((null? factors) 1)
                       ((null? (cdr factors)) (car factors))
                       (else (cons '* factors))))))))))

(define expr '(+ (* 3 x x) (* a x x) (* b x) 5 (/ x (+ x 1))))

(define (size e) (if (pair? e) (+ 1 (fold + 0 (map size e))) 1))

(define (run k)
  (let loop ((i 0) (total 0))
    (if (= i k)
        total
        (let ((d (simplify (deriv (deriv expr)))))
          (loop (+ i 1) (+ total (size d)))))))

(display "d/dx: ") (display (simplify (deriv expr))) (newline)
(display "d2/dx2: ") (display (simplify (deriv (deriv expr)))) (newline)
(display "total size: ") (display (run 10000)) (newline)
