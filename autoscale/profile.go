package autoscale

import "time"

// ActiveProfile answers the profile in force at now and its index: a fixed-date
// profile whose range contains now (the first such), else the recurrence
// profile that started most recently, else the default profile. ok is false
// when no profile applies (only recurrence or fixed-date profiles, none in
// force).
func (s Setting) ActiveProfile(now time.Time) (p Profile, index int, ok bool) {
	for i, p := range s.Profiles {
		if fd := p.FixedDate; fd != nil && !now.Before(fd.Start) && !now.After(fd.End) {
			return p, i, true
		}
	}
	best, bestStart := -1, time.Time{}
	for i, p := range s.Profiles {
		if p.Recurrence == nil {
			continue
		}
		if st, found := p.Recurrence.LastStart(now); found && (best < 0 || st.After(bestStart)) {
			best, bestStart = i, st
		}
	}
	if best >= 0 {
		return s.Profiles[best], best, true
	}
	for i, p := range s.Profiles {
		if p.FixedDate == nil && p.Recurrence == nil {
			return p, i, true
		}
	}
	return Profile{}, -1, false
}

// LastStart answers the latest start of the recurrence at or before now.
func (r *Recurrence) LastStart(now time.Time) (time.Time, bool) {
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	var best time.Time
	found := false
	for back := 0; back <= 7; back++ {
		day := local.AddDate(0, 0, -back)
		if !r.onDay(day.Weekday()) {
			continue
		}
		for _, h := range r.Hours {
			for _, m := range r.Minutes {
				t := time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, loc)
				if !t.After(now) && (!found || t.After(best)) {
					best, found = t, true
				}
			}
		}
		if found {
			return best, true
		}
	}
	return best, found
}

func (r *Recurrence) onDay(d time.Weekday) bool {
	for _, x := range r.Days {
		if x == d {
			return true
		}
	}
	return false
}
