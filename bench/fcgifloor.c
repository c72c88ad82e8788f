/*
 * fcgifloor.c - the FastCGI floor for bench/run: the least work any
 * FastCGI program behind lighttpd can do per request, to show how close
 * imgsvc's cache hits and passthroughs can come to static serving at all.
 *
 * At start-up it reads every file of the directory $FLOOR_DIR (or else
 * $IMGSVC_CONFIG, so that it runs under the shipped lighttpd snippet
 * unchanged, with var.imgsvc_config naming the directory) into memory. Each
 * request for /NAME answers 200 with those bytes (Content-Type image/jpeg,
 * Content-Length), written the way imgsvc writes bodies: FastCGI STDOUT
 * records of up to 64 KiB with writev, no copy. No API key, no S3, no
 * image work, no log line; unknown names get 404.
 *
 * Build: cc -O2 -o fcgifloor fcgifloor.c -lfcgi
 * Run:   as a lighttpd fastcgi.server bin-path (bench/run uses
 *        lighttpd-conf/imgsvc.conf with var.imgsvc_binary = this program).
 */
#include <dirent.h>
#include <errno.h>
#include <fcgiapp.h>
#include <fastcgi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

struct file {
	char name[256];
	unsigned char *data;
	size_t len;
};

static struct file files[16];
static int nfiles;

static void load(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d) {
		perror(dir);
		exit(1);
	}
	while ((e = readdir(d)) && nfiles < 16) {
		char path[4096];
		FILE *f;
		long n;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0)
			exit(1);
		rewind(f);
		struct file *x = &files[nfiles++];
		snprintf(x->name, sizeof x->name, "%s", e->d_name);
		x->len = (size_t)n;
		x->data = malloc(x->len ? x->len : 1);
		if (!x->data || fread(x->data, 1, x->len, f) != x->len)
			exit(1);
		fclose(f);
	}
	closedir(d);
}

static int write_records(FCGX_Request *rq, const unsigned char *data, size_t len)
{
	if (FCGX_FFlush(rq->out) < 0)
		return -1;
	while (len > 0) {
		size_t n = len > 65528 ? 65528 : len;
		unsigned char hdr[8] = {FCGI_VERSION_1, FCGI_STDOUT,
					(unsigned char)(rq->requestId >> 8), (unsigned char)rq->requestId,
					(unsigned char)(n >> 8), (unsigned char)n, 0, 0};
		struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)data, n}};
		size_t want = sizeof hdr + n;
		while (want > 0) {
			ssize_t w = writev(rq->ipcFd, iov, 2);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			want -= (size_t)w;
			for (int i = 0; i < 2 && w > 0; i++) {
				size_t k = (size_t)w < iov[i].iov_len ? (size_t)w : iov[i].iov_len;
				iov[i].iov_base = (char *)iov[i].iov_base + k;
				iov[i].iov_len -= k;
				w -= (ssize_t)k;
			}
		}
		data += n;
		len -= n;
	}
	return 0;
}

int main(void)
{
	FCGX_Request rq;
	const char *dir = getenv("FLOOR_DIR");
	if (!dir)
		dir = getenv("IMGSVC_CONFIG");
	load(dir ? dir : ".");
	FCGX_Init();
	FCGX_InitRequest(&rq, 0, 0);
	while (FCGX_Accept_r(&rq) >= 0) {
		const char *p = FCGX_GetParam("PATH_INFO", rq.envp);
		const char *base = p ? strrchr(p, '/') : NULL;
		struct file *f = NULL;
		for (int i = 0; base && i < nfiles; i++)
			if (strcmp(files[i].name, base + 1) == 0)
				f = &files[i];
		if (!f) {
			FCGX_PutS("Status: 404 Not Found\r\nContent-Length: 0\r\n\r\n", rq.out);
		} else {
			char head[128];
			int n = snprintf(head, sizeof head,
					 "Status: 200 OK\r\nContent-Type: image/jpeg\r\n"
					 "Content-Length: %zu\r\n\r\n",
					 f->len);
			FCGX_PutStr(head, n, rq.out);
			write_records(&rq, f->data, f->len);
		}
		FCGX_Finish_r(&rq);
	}
	return 0;
}
