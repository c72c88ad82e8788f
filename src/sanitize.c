/*
 * sanitize.c - default options of AddressSanitizer, LeakSanitizer and
 * UndefinedBehaviorSanitizer, compiled in only by ./configure
 * --enable-sanitizers (linked into imgsvc, imgsvc-usage and the check
 * programs).
 *
 * A worker started by lighttpd, Apache mod_fcgid or spawn-fcgi gets no say
 * over its environment (mod_fcgid passes almost none), so the options the
 * tests rely on live in the binary; ASAN_OPTIONS, LSAN_OPTIONS and
 * UBSAN_OPTIONS still override them one by one. Reports go to stderr, the
 * request log the tests keep, unless log_path says otherwise (tests/lib.sh
 * sets it for whatever inherits its environment).
 *
 * - halt_on_error: the first report ends the process (with
 *   -fno-sanitize-recover=all for UBSan too), so no report goes unnoticed.
 * - detect_leaks: what is still allocated and unreachable at exit is
 *   reported; imgsvc frees what it owns on SIGTERM.
 * - detect_stack_use_after_return, check_initialization_order,
 *   strict_init_order: the checks ASan leaves off by default.
 * - allocator_may_return_null stays 0: an absurd allocation size (a size
 *   computed wrongly) is a report, not a NULL handled quietly as a 5xx.
 * - print_stacktrace: UBSan reports say where.
 *
 * No leak suppressions: the whole test suite runs without a report, the
 * libraries' one-time allocations included (they stay reachable).
 *
 * With --enable-tsan, ThreadSanitizer's options instead: halt_on_error
 * again, and second_deadlock_stack for lock-order reports.
 */

#ifdef IMGSVC_TSAN
/* The runtime calls this by name; nothing in imgsvc does. */
const char *__tsan_default_options(void);

const char *__tsan_default_options(void)
{
	return "halt_on_error=1:second_deadlock_stack=1:print_summary=1";
}
#else
/* The runtimes call these by name; nothing in imgsvc does. */
const char *__asan_default_options(void);
const char *__ubsan_default_options(void);

const char *__asan_default_options(void)
{
	return "halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:"
	       "check_initialization_order=1:strict_init_order=1:print_summary=1";
}

const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1:print_summary=1";
}
#endif
