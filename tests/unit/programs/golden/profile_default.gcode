; generator: profile_rect (routing.programs)
; param breakthrough_mm = 0.2
; param clearance_z_mm = 15.0
; param climb = True
; param corner_radius_mm = 5.0
; param depth_per_pass_mm = 2.0
; param feed_mm_min = 1000.0
; param height_mm = 60.0
; param lead_in = 'arc'
; param lead_in_mm = 5.0
; param margin_mm = 15.0
; param plunge_feed_mm_min = 300.0
; param safe_z_mm = 5.0
; param spindle_rpm = 18000
; param thickness_mm = 6.0
; param tool_diameter_mm = 6.0
; param width_mm = 100.0
; 4 pass(es) of 1.5500 mm to Z-6.2
G21
G90
G17
G94
G0 Z15
M3 S18000
G4 P3
G0 X70 Y7
G0 Z5
G1 Z0 F300
; pass 1 of 4
G3 X65 Y12 Z-1.55 I-5 J0 F300
G1 X20 Y12 F1000
G2 X12 Y20 I0 J8
G1 X12 Y70
G2 X20 Y78 I8 J0
G1 X110 Y78
G2 X118 Y70 I0 J-8
G1 X118 Y20
G2 X110 Y12 I-8 J0
G1 X65 Y12
G2 X70 Y7 I0 J-5
; pass 2 of 4
G3 X65 Y12 Z-3.1 I-5 J0 F300
G1 X20 Y12 F1000
G2 X12 Y20 I0 J8
G1 X12 Y70
G2 X20 Y78 I8 J0
G1 X110 Y78
G2 X118 Y70 I0 J-8
G1 X118 Y20
G2 X110 Y12 I-8 J0
G1 X65 Y12
G2 X70 Y7 I0 J-5
; pass 3 of 4
G3 X65 Y12 Z-4.65 I-5 J0 F300
G1 X20 Y12 F1000
G2 X12 Y20 I0 J8
G1 X12 Y70
G2 X20 Y78 I8 J0
G1 X110 Y78
G2 X118 Y70 I0 J-8
G1 X118 Y20
G2 X110 Y12 I-8 J0
G1 X65 Y12
G2 X70 Y7 I0 J-5
; pass 4 of 4
G3 X65 Y12 Z-6.2 I-5 J0 F300
G1 X20 Y12 F1000
G2 X12 Y20 I0 J8
G1 X12 Y70
G2 X20 Y78 I8 J0
G1 X110 Y78
G2 X118 Y70 I0 J-8
G1 X118 Y20
G2 X110 Y12 I-8 J0
G1 X65 Y12
G2 X70 Y7 I0 J-5
G0 Z15
M5
M2
