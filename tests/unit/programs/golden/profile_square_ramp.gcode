; generator: profile_rect (routing.programs)
; param breakthrough_mm = 0.2
; param clearance_z_mm = 15.0
; param climb = False
; param corner_radius_mm = 0.0
; param depth_per_pass_mm = 1.0
; param feed_mm_min = 1000.0
; param height_mm = 40.0
; param lead_in = 'ramp'
; param lead_in_mm = 3.0
; param margin_mm = 8.0
; param plunge_feed_mm_min = 300.0
; param safe_z_mm = 5.0
; param spindle_rpm = 18000
; param thickness_mm = 3.0
; param tool_diameter_mm = 3.175
; param width_mm = 40.0
; 4 pass(es) of 0.8000 mm to Z-3.2
G21
G90
G17
G94
G0 Z15
M3 S18000
G4 P3
G0 X25 Y3.412
G0 Z5
G1 Z0 F300
; pass 1 of 4
G1 X28 Y6.412 Z-0.8 F300
G1 X48 Y6.412 F1000
G3 X49.587 Y8 I0 J1.588
G1 X49.587 Y48
G3 X48 Y49.587 I-1.587 J0
G1 X8 Y49.587
G3 X6.413 Y48 I0 J-1.587
G1 X6.413 Y8
G3 X8 Y6.412 I1.587 J0
G1 X28 Y6.412
G1 X25 Y3.412
; pass 2 of 4
G1 X28 Y6.412 Z-1.6 F300
G1 X48 Y6.412 F1000
G3 X49.587 Y8 I0 J1.588
G1 X49.587 Y48
G3 X48 Y49.587 I-1.587 J0
G1 X8 Y49.587
G3 X6.413 Y48 I0 J-1.587
G1 X6.413 Y8
G3 X8 Y6.412 I1.587 J0
G1 X28 Y6.412
G1 X25 Y3.412
; pass 3 of 4
G1 X28 Y6.412 Z-2.4 F300
G1 X48 Y6.412 F1000
G3 X49.587 Y8 I0 J1.588
G1 X49.587 Y48
G3 X48 Y49.587 I-1.587 J0
G1 X8 Y49.587
G3 X6.413 Y48 I0 J-1.587
G1 X6.413 Y8
G3 X8 Y6.412 I1.587 J0
G1 X28 Y6.412
G1 X25 Y3.412
; pass 4 of 4
G1 X28 Y6.412 Z-3.2 F300
G1 X48 Y6.412 F1000
G3 X49.587 Y8 I0 J1.588
G1 X49.587 Y48
G3 X48 Y49.587 I-1.587 J0
G1 X8 Y49.587
G3 X6.413 Y48 I0 J-1.587
G1 X6.413 Y8
G3 X8 Y6.412 I1.587 J0
G1 X28 Y6.412
G1 X25 Y3.412
G0 Z15
M5
M2
