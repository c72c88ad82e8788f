/*
 * budget.h - what a transformation will cost in memory, known before a
 * pixel is decoded.
 *
 * GraphicsMagick (Q16) keeps 8 bytes a pixel. A request's peak is the
 * decoded source, plus either a turned copy of it (EXIF orientation or
 * rotate) or the resize's intermediate and its output, plus what the
 * decoder and the encoder keep of their own. The figures below were
 * measured (VmHWM of a worker, README "Memory"); the estimate is meant to
 * be on the high side of them. A request whose estimate is over
 * max_image_memory is refused with 413 before it is decoded, so the
 * answer for one object and one URL is the same on every request.
 *
 * Pure arithmetic, unit-tested.
 */
#ifndef IMGSVC_BUDGET_H
#define IMGSVC_BUDGET_H

#include "params.h"
#include "probe.h"
#include "status.h"

struct budget_limits {
	long long max_image_memory;  /* bytes one image's work may take */
	long long max_output_pixels; /* the most a fit=fill enlargement may ask for */
};

/*
 * The pixels a JPEG of w x h is decoded to when the pipeline asks for
 * p (the decoder's DCT scaling: 1/1, 1/2, 1/4 or 1/8 of each side, never
 * less than the output needs); w x h for the other formats.
 */
void budget_decoded(const struct probe_info *info, const struct params *p, unsigned long *dw,
		    unsigned long *dh);

/*
 * The estimated peak bytes of the pipeline for p on a source probed as
 * info, source_bytes long (-1: not known yet), held in memory throughout.
 */
long long budget_bytes(const struct probe_info *info, const struct params *p,
		       long long source_bytes);

/*
 * Whether p may run on the source probed as info: ST_OK, ST_BAD_REQUEST
 * for a fit=fill that would enlarge past max_output_pixels (*message is
 * for the client), ST_TOO_LARGE when the estimate is over
 * max_image_memory. *need gets the estimate.
 */
enum status budget_check(const struct probe_info *info, const struct params *p,
			 long long source_bytes, const struct budget_limits *lim, long long *need,
			 const char **message);

#endif
