//! Attention heat maps (`models::nmt::heatmap`): the PNG decodes, has the size the layout
//! gives for its tokens, and each cell's grey is its weight (white 0, black 1).

use wgrnn::models::nmt::heatmap;

#[test]
fn heat_map_cells_show_their_weights() {
    let src: Vec<String> = ["Ein", "Hund", "läuft", "##.", "</s>"]
        .map(String::from)
        .to_vec();
    let tgt: Vec<String> = ["A", "dog", "runs", "</s>"].map(String::from).to_vec();
    // Rows sum to 1; one row puts everything on one source token.
    let w: Vec<Vec<f32>> = vec![
        vec![0.7, 0.1, 0.1, 0.05, 0.05],
        vec![0.05, 0.8, 0.05, 0.05, 0.05],
        vec![0.0, 0.0, 1.0, 0.0, 0.0],
        vec![0.2, 0.2, 0.2, 0.2, 0.2],
    ];
    let dir = std::env::temp_dir().join(format!("wgrnn-heatmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("000001.png");
    heatmap::write(&path, &src, &tgt, &w).unwrap();
    let img = image::open(&path).unwrap().to_rgb8();
    let (width, height) = heatmap::size(&src, &tgt);
    assert_eq!((img.width(), img.height()), (width, height));
    // Room for a cell per token and the labels.
    assert!(width > heatmap::CELL * 5 && height > heatmap::CELL * 4);
    for (i, row) in w.iter().enumerate() {
        for (j, &a) in row.iter().enumerate() {
            let (x, y) = heatmap::cell_centre(&src, &tgt, i, j);
            let px = img.get_pixel(x, y).0;
            let g = heatmap::shade(a);
            assert_eq!(px, [g, g, g], "cell ({i}, {j}) of weight {a}");
        }
    }
    // The labels put ink outside the grid: left of the first cell and above it.
    let (x0, y0) = heatmap::cell_centre(&src, &tgt, 0, 0);
    let ink = |xs: std::ops::Range<u32>, ys: std::ops::Range<u32>| {
        xs.flat_map(|x| ys.clone().map(move |y| (x, y)))
            .any(|(x, y)| img.get_pixel(x, y).0[0] < 128)
    };
    assert!(
        ink(0..x0 - heatmap::CELL / 2, 0..height),
        "no target labels"
    );
    assert!(ink(0..width, 0..y0 - heatmap::CELL / 2), "no source labels");
    // Mismatched weights are an error, not a picture.
    assert!(heatmap::write(&dir.join("bad.png"), &src, &tgt, &w[..3]).is_err());
    assert!(!dir.join("bad.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
