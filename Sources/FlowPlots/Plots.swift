/// Namespace for the ready-made figures of the flow trainer. Every entry point is a pure function that
/// returns a complete, self-contained SVG document as a `String` (12 px sans-serif text, light grid,
/// nice 1-2-5 ticks); the same input always gives the same bytes.
///
/// The figures, one file each:
/// - `fourPanel` (ScatterPlot.swift) and `panelGrid` (PanelGrid.swift): scatter panels of `Points2D`;
/// - `lineChart` and `lossCurves` (LineChart.swift): named curves against epoch, with a legend;
/// - `zoomedLineChart` (ZoomedLineChart.swift): a line chart zoomed in y beside a full-range overview panel;
/// - `heatMap` and `gridCenters` (HeatMap.swift): a log-density on a regular grid with a viridis colour bar,
///   smoothed (HeatMapCells.swift), with data overlaid in an ``OverlayPointStyle`` (PointOverlay.swift);
/// - `imageGrid` and `imageGrids` (ImageGrid.swift): gray-scale image grids, alone or side by side, and
///   `ImageGridSpec.byClass` (ImageGridByClass.swift): labelled images, one column per class;
/// - `pairwiseScatter` and `allFeaturePairs` (PairPlot.swift): a scatter matrix of tabular data vs samples.
public enum Plots {}
