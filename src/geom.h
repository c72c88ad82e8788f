/*
 * geom.h - output geometry: from the source size and the parameters to the
 * size to scale to, the crop to take, and the decoder's size hint.
 *
 * The rules (README "Sizes"): w only or h only keeps the aspect ratio;
 * inside fits the box; cover fills it and crops the centre; fill stretches
 * to exactly w x h. inside and cover never enlarge: the scale is capped at
 * 1. fill enlarges, because exactly w x h is what it asks for.
 *
 * Pure arithmetic, unit-tested.
 */
#ifndef IMGSVC_GEOM_H
#define IMGSVC_GEOM_H

#include <stdbool.h>

#include "params.h"

struct geom {
	unsigned long scale_w, scale_h; /* resize to this (upright, rotated) */
	unsigned long crop_w, crop_h;   /* then keep this much of the centre */
};

/*
 * W x H is the image as it will be shown (after EXIF orientation and
 * rotate). Fills g; scale == source and crop == scale when nothing changes.
 */
void geom_plan(unsigned long W, unsigned long H, const struct params *p, struct geom *g);

/* true when EXIF orientation o (1..8) turns the image by 90 or 270 degrees. */
bool geom_orientation_swaps(int orientation);

#endif
